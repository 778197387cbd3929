/**
 * The log fixture of the cursor tests (log-cursor.test.ts, record-run.test.ts):
 * a store with small segments and no background compaction, a churn of sets,
 * deletes (and, if asked, batches and expiry times) over 40 keys, and the
 * cursor's records read to the end and summed up as comparable lines.
 */
import type { CursorRecord, LogCursor } from '../../src/engine/log-cursor.js';
import { openStore, type Store } from '../../src/engine/store.js';
import { silentLogger } from './helpers.js';

/** A store on `dir` with small segments, no value cache and no automatic compaction. */
export async function openLogStore(dir: string, maxSegmentBytes = 2048): Promise<Store> {
  return openStore(dir, {
    maxSegmentBytes,
    logger: silentLogger,
    cacheBytes: 0,
    compaction: { auto: false },
  });
}

/**
 * Writes `n` sets and deletes over 40 keys: plenty of overwritten values and
 * tombstones. With `mixed`, also batches (MSET-like, with a delete) and
 * expiry times.
 */
export async function churn(store: Store, n: number, tag: string, mixed = false): Promise<void> {
  for (let i = 0; i < n; i++) {
    const k = `k${i % 40}`;
    if (i % 7 === 3) await store.delete(k);
    else if (mixed && i % 11 === 5)
      await store.batch([
        { type: 'set', key: `${k}a`, value: `${tag}-${i}` },
        { type: 'set', key: `${k}b`, value: 'y'.repeat(i % 90) },
        { type: 'del', key: 'k0' },
      ]);
    else if (mixed && i % 13 === 6) await store.set(k, `${tag}-${i}`, { ttlMs: 600_000 + i });
    else await store.set(k, `${tag}-${i}-${'x'.repeat(i % 50)}`);
  }
}

/** One line per record: offset, flags, expiry, key and value. */
export function summary(recs: readonly CursorRecord[]): string[] {
  return recs.map((r) => `${r.offset}:${r.flags}:${r.expiresAt}:${r.key.toString()}=${r.value.toString()}`);
}

/** Every record until the end of the log, `maxBytes` a read. */
export function readAll(cursor: LogCursor, maxBytes = 1 << 20): CursorRecord[] {
  const out: CursorRecord[] = [];
  for (;;) {
    const batch = cursor.read(maxBytes);
    if (batch.length === 0) return out;
    out.push(...batch);
  }
}
