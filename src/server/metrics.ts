/**
 * The server's own counters (the store keeps its own in `stats()`): requests
 * by command, network bytes, slow commands, and the per-request timing that
 * feeds the slow-command log and the Prometheus latency histograms.
 *
 * Cost on the hot path: one array increment per request and one addition per
 * received chunk and per socket write. Requests are timed (one
 * performance.now() pair each) only when `timing` is on, i.e. when the slow
 * log or the metrics endpoint is enabled.
 *
 * Everything runs on the event loop; INFO and the metrics endpoint read the
 * same fields, so they always agree.
 */
import type { Logger } from 'pino';
import { COMMAND_NAMES, type CommandName } from '../protocol/messages.js';

/**
 * Upper bounds of the per-command latency histogram buckets, seconds (10 µs … 1 s;
 * one more bucket holds the rest). Kept here as plain counters, not prom-client
 * Histograms: its observe() hashes the labels on every call, which cost ~15% of
 * GET throughput; the endpoint converts these at scrape time.
 */
export const LATENCY_BUCKETS_SECONDS: readonly number[] = [
  0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
  0.5, 1,
];
const BUCKETS = LATENCY_BUCKETS_SECONDS.length + 1;

export interface ServerMetricsOptions {
  /** Log commands taking at least this long, ms. Default undefined: no slow log. */
  slowlogThresholdMs?: number | undefined;
  /** Where slow commands are logged (warn level). */
  log: Logger;
}

/** Index of each command in the per-command arrays (COMMAND_NAMES order). */
export const COMMAND_INDEX: ReadonlyMap<string, number> = new Map(COMMAND_NAMES.map((n, i) => [n, i]));

/**
 * How many keys a request names (for the slow log; values are never logged).
 * `req` is the decoded request `[id, name, ...args]`.
 */
export function keyCount(name: CommandName, req: readonly unknown[]): number {
  const args = req.length - 2;
  switch (name) {
    case 'GET':
    case 'SET':
    case 'INCR':
    case 'TTL':
    case 'EXPIRE':
    case 'PERSIST':
      return 1;
    case 'DEL':
    case 'MGET':
    case 'EXISTS':
      return args;
    case 'MSET':
      return Math.floor(args / 2);
    default:
      return 0;
  }
}

export class ServerMetrics {
  /** Requests dispatched, by command (index: COMMAND_INDEX). Unknown commands and NOAUTH are not counted. */
  readonly commands = new Array<number>(COMMAND_NAMES.length).fill(0);
  /** Bytes received from clients (frames, before decoding). */
  bytesIn = 0;
  /** Bytes of replies written to client sockets. */
  bytesOut = 0;
  /** Commands at or over the slow-log threshold. */
  slowCommands = 0;
  /** Time every request: set when the slow log or the metrics endpoint is on. */
  timing: boolean;
  /**
   * Timed requests by command and latency bucket (not cumulative): entry
   * `index * (LATENCY_BUCKETS_SECONDS.length + 1) + bucket`; the last bucket of each command is "over 1 s".
   */
  readonly latencyBuckets = new Float64Array(COMMAND_NAMES.length * BUCKETS);
  /** Sum of the timed requests' durations by command, seconds. */
  readonly latencySums = new Float64Array(COMMAND_NAMES.length);
  private readonly slowMs: number | undefined;
  private readonly log: Logger;

  constructor(options: ServerMetricsOptions) {
    this.slowMs = options.slowlogThresholdMs;
    this.log = options.log;
    this.timing = this.slowMs !== undefined;
  }

  /** The slow-log threshold, ms, or undefined when off. */
  get slowlogThresholdMs(): number | undefined {
    return this.slowMs;
  }

  /** Times every request from now on (the metrics endpoint wants the latency histograms). */
  enableTiming(): void {
    this.timing = true;
  }

  /**
   * One timed request finished (`ms` since it was dispatched: for writes,
   * until the store acknowledged them).
   */
  observe(index: number, ms: number, req: readonly unknown[], remote: string): void {
    const seconds = ms / 1000;
    let b = 0;
    while (b < BUCKETS - 1 && seconds > LATENCY_BUCKETS_SECONDS[b]!) b++;
    this.latencyBuckets[index * BUCKETS + b]!++;
    this.latencySums[index]! += seconds;
    if (this.slowMs !== undefined && ms >= this.slowMs) {
      this.slowCommands++;
      const command = COMMAND_NAMES[index]!;
      this.log.warn(
        { command, ms: Math.round(ms * 1000) / 1000, keys: keyCount(command, req), remote },
        'slow command',
      );
    }
  }

  /** Requests by command name, every command listed. */
  commandCounts(): Record<CommandName, number> {
    const out = {} as Record<CommandName, number>;
    COMMAND_NAMES.forEach((n, i) => {
      out[n] = this.commands[i]!;
    });
    return out;
  }
}
