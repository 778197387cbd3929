/**
 * `kv-cli --latency`: PING round trips, one at a time, `-i` apart, with
 * min/avg/max in milliseconds as redis-cli prints them
 * (`min: 0.041, max: 0.387, avg: 0.071 (100 samples)`). Runs until Ctrl-C
 * (or SIGTERM), or for `--latency-samples N`. On a terminal the line is
 * redrawn in place; otherwise it is printed once at the end.
 */
import { EXIT_OK, EXIT_PROBLEMS } from '../lib/cli.js';
import { ConnectionWatch, cannotConnect, openClient } from './connection.js';
import type { CliOptions } from './options.js';

/** Redraw period on a terminal, ms. */
const REDRAW_MS = 100;

export interface LatencyStats {
  min: number;
  max: number;
  avg: number;
  samples: number;
}

export function latencyLine(s: LatencyStats): string {
  return `min: ${s.min.toFixed(3)}, max: ${s.max.toFixed(3)}, avg: ${s.avg.toFixed(3)} (${s.samples} samples)`;
}

export async function runLatency(o: CliOptions): Promise<number> {
  const client = openClient(o, { reconnect: false });
  const watch = new ConnectionWatch(client);
  let stop = false;
  let wakeSleep: (() => void) | undefined;
  const onSignal = () => {
    stop = true;
    wakeSleep?.();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const tty = process.stdout.isTTY === true && o.output !== 'json';
  let min = Number.POSITIVE_INFINITY;
  let max = 0;
  let sum = 0;
  let n = 0;
  let lastDraw = 0;
  const ms = (x: number) => Math.round(x * 1000) / 1000;
  const stats = (): LatencyStats => ({
    min: ms(n ? min : 0),
    max: ms(max),
    avg: ms(n ? sum / n : 0),
    samples: n,
  });
  try {
    // The connection is opened by a first PING that is not a sample.
    try {
      await client.ping();
    } catch (err) {
      process.stderr.write(`${cannotConnect(o, watch.lastError ?? err)}\n`);
      return EXIT_PROBLEMS;
    }
    while (!stop && (o.latencySamples === undefined || n < o.latencySamples)) {
      const t0 = performance.now();
      try {
        await client.ping();
      } catch (err) {
        if (tty && n > 0) process.stdout.write('\n');
        process.stderr.write(`kv-cli: PING failed after ${n} samples: ${(err as Error).message}\n`);
        return EXIT_PROBLEMS;
      }
      const dt = performance.now() - t0;
      n++;
      sum += dt;
      if (dt < min) min = dt;
      if (dt > max) max = dt;
      if (tty && performance.now() - lastDraw >= REDRAW_MS) {
        lastDraw = performance.now();
        process.stdout.write(`\r${latencyLine(stats())}\x1b[0K`);
      }
      if (o.intervalMs > 0 && !stop) {
        await new Promise<void>((r) => {
          const t = setTimeout(r, o.intervalMs);
          wakeSleep = () => {
            clearTimeout(t);
            r();
          };
        });
        wakeSleep = undefined;
      }
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await client.close();
  }
  const s = stats();
  if (o.output === 'json') process.stdout.write(`${JSON.stringify(s)}\n`);
  else process.stdout.write(`${tty ? '\r' : ''}${latencyLine(s)}${tty ? '\x1b[0K' : ''}\n`);
  return EXIT_OK;
}
