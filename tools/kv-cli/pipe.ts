/**
 * `kv-cli --pipe`: bulk load. Commands from stdin (pipe-input.ts) go out
 * pipelined, at most `--pipe-window` awaiting their reply; reading stdin
 * waits while the window is full, so memory stays bounded whatever the
 * input size. The SDK writes every command issued in one tick in one
 * socket write.
 *
 * Reports: while running, a progress line with the rate on stderr, redrawn
 * when stderr is a terminal and erased at the end; the summary, once, on
 * stdout (sent, replies, errors, time and rate), or as JSON with --json; the
 * first MAX_SHOWN_ERRORS errors on stderr with their line. Exit 1 if any
 * command failed or the connection was lost.
 */
import { EXIT_OK, EXIT_PROBLEMS } from '../lib/cli.js';
import { errorReply, resolveCommand, runCommand } from './commands.js';
import { ConnectionWatch, cannotConnect, openClient } from './connection.js';
import type { CliOptions } from './options.js';
import { readCommands } from './pipe-input.js';
import { formatHuman, type Reply } from './reply.js';

/** Errors printed one by one; more are only counted. */
const MAX_SHOWN_ERRORS = 10;
/** Progress redraw period on a terminal, ms. */
const PROGRESS_MS = 200;

export interface PipeSummary {
  sent: number;
  replies: number;
  errors: number;
  seconds: number;
  perSecond: number;
}

function thousands(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

export function progressText(
  s: { sent: number; replies: number; errors: number },
  elapsedMs: number,
): string {
  const rate = elapsedMs > 0 ? (s.replies * 1000) / elapsedMs : 0;
  return (
    `sent ${thousands(s.sent)}  replies ${thousands(s.replies)}  errors ${thousands(s.errors)}  ` +
    `${(elapsedMs / 1000).toFixed(1)}s  ${thousands(rate)} cmds/s`
  );
}

/** The one summary line: `sent: 3, replies: 3, errors: 0 (0.0s, 1,234 cmds/s)`. */
export function summaryText(s: PipeSummary): string {
  return (
    `sent: ${s.sent}, replies: ${s.replies}, errors: ${s.errors} ` +
    `(${s.seconds.toFixed(1)}s, ${thousands(s.perSecond)} cmds/s)`
  );
}

export async function runPipe(
  o: CliOptions,
  input: AsyncIterable<Buffer | string> = process.stdin,
): Promise<number> {
  const client = openClient(o, { reconnect: false, offlineQueueLimit: o.pipeWindow + 1 });
  const watch = new ConnectionWatch(client);
  try {
    await client.ping();
  } catch (err) {
    process.stderr.write(`${cannotConnect(o, watch.lastError ?? err)}\n`);
    await client.close();
    return EXIT_PROBLEMS;
  }

  const stats = { sent: 0, replies: 0, errors: 0 };
  let shown = 0;
  const reportError = (line: number, r: Extract<Reply, { type: 'error' }>) => {
    stats.errors++;
    if (shown < MAX_SHOWN_ERRORS) {
      process.stderr.write(`${tty ? '\r\x1b[0K' : ''}line ${line}: ${formatHuman(r)}\n`);
    } else if (shown === MAX_SHOWN_ERRORS) {
      process.stderr.write(`${tty ? '\r\x1b[0K' : ''}(more errors are only counted)\n`);
    }
    shown++;
  };

  const tty = process.stderr.isTTY === true;
  const started = performance.now();
  const elapsed = () => performance.now() - started;
  const timer = tty
    ? setInterval(() => process.stderr.write(`\r${progressText(stats, elapsed())}\x1b[0K`), PROGRESS_MS)
    : undefined;

  let inflight = 0;
  let wake: (() => void) | undefined;
  const settled = () => {
    inflight--;
    const w = wake;
    wake = undefined;
    w?.();
  };
  let lost = false;
  for await (const item of readCommands(input)) {
    if ('error' in item) {
      reportError(item.line, { type: 'error', code: 'ERR', message: item.error });
      continue;
    }
    if (item.args.length === 0) continue;
    try {
      resolveCommand(item.args);
    } catch (err) {
      reportError(item.line, errorReply(err) as Extract<Reply, { type: 'error' }>);
      continue;
    }
    while (inflight >= o.pipeWindow) await new Promise<void>((r) => (wake = r));
    if (client.status !== 'ready') {
      lost = true;
      break;
    }
    inflight++;
    stats.sent++;
    const line = item.line;
    void runCommand({ client }, item.args).then((r) => {
      // A command the lost connection took with it got no reply: an error, not a reply.
      const noReply = r.type === 'error' && (r.code === 'CONNECTION_CLOSED' || r.code === 'CLOSED');
      if (noReply) lost = true;
      else stats.replies++;
      if (r.type === 'error') reportError(line, r);
      settled();
    });
  }
  while (inflight > 0) await new Promise<void>((r) => (wake = r));
  if (timer) clearInterval(timer);
  await client.close();

  const ms = elapsed();
  const summary: PipeSummary = {
    ...stats,
    seconds: Number((ms / 1000).toFixed(3)),
    perSecond: Math.round(ms > 0 ? (stats.replies * 1000) / ms : 0),
  };
  if (tty) process.stderr.write('\r\x1b[0K'); // the summary below says it once
  if (lost) process.stderr.write(`${cannotConnect(o, watch.lastError ?? 'the connection was lost')}\n`);
  if (o.output === 'json') process.stdout.write(`${JSON.stringify({ ...summary, connectionLost: lost })}\n`);
  else process.stdout.write(`${summaryText(summary)}\n`);
  return stats.errors > 0 || lost ? EXIT_PROBLEMS : EXIT_OK;
}
