/**
 * The progress bar of `compact`. COMPACT replies only when the compaction is
 * done, and replies on one connection come in request order, so progress is
 * read on a second connection: INFO compaction, every POLL_MS, whose
 * `progress` is {segmentsDone, segmentsTotal, bytesDone, bytesTotal} while a
 * run is going (null while the active segment is sealed, or between runs).
 * Drawn on stderr, and only when stderr is a terminal.
 */
import type { WriteStream } from 'node:tty';
import { openClient } from './connection.js';
import type { CliOptions } from './options.js';

/** Time between two INFO compaction polls, ms. */
export const POLL_MS = 100;
const BAR_WIDTH = 30;

export interface CompactionProgress {
  segmentsDone: number;
  segmentsTotal: number;
  bytesDone: number;
  bytesTotal: number;
}

export function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** One line of the bar: `compacting [#####-----]  50%  1.0 MiB/2.0 MiB  segments 1/2  0.4s`. */
export function progressLine(p: CompactionProgress | null, elapsedMs: number): string {
  const secs = `${(elapsedMs / 1000).toFixed(1)}s`;
  if (p === null || p.bytesTotal <= 0) {
    return `compacting [${'-'.repeat(BAR_WIDTH)}]  starting  ${secs}`;
  }
  const frac = Math.min(1, Math.max(0, p.bytesDone / p.bytesTotal));
  const filled = Math.round(frac * BAR_WIDTH);
  const pct = `${Math.floor(frac * 100)}%`.padStart(4);
  return (
    `compacting [${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${pct}  ` +
    `${humanBytes(p.bytesDone)}/${humanBytes(p.bytesTotal)}  ` +
    `segments ${p.segmentsDone}/${p.segmentsTotal}  ${secs}`
  );
}

function progressOf(info: Record<string, unknown>): CompactionProgress | null {
  const c = info.compaction as { progress?: unknown } | undefined;
  const p = c?.progress as CompactionProgress | null | undefined;
  return p && typeof p.bytesTotal === 'number' ? p : null;
}

/**
 * A watcher for CommandContext.watchCompaction, or undefined when `tty` is not
 * a terminal (no bar in logs and pipes).
 */
export function compactionWatcher(
  o: CliOptions,
  tty: WriteStream | NodeJS.WriteStream,
): ((done: Promise<unknown>) => Promise<void>) | undefined {
  if (!tty.isTTY) return undefined;
  return async (done) => {
    const started = Date.now();
    const poller = openClient(o, { reconnect: false });
    poller.on('error', () => {}); // progress is best effort
    let finished = false;
    void done.finally(() => {
      finished = true;
    });
    let last: CompactionProgress | null = null;
    try {
      while (!finished) {
        tty.write(`\r${progressLine(last, Date.now() - started)}\x1b[0K`);
        const poll = poller.info('compaction').then(progressOf, () => last);
        const tick = new Promise((r) => setTimeout(r, POLL_MS));
        last =
          (await Promise.race([Promise.all([poll, tick]).then(([p]) => p), done.then(() => last)])) ?? last;
      }
    } finally {
      tty.write('\r\x1b[0K');
      void poller.close();
    }
  };
}
