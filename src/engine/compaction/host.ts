/**
 * What compaction needs from the store it runs in: the segment log (its
 * segment list and keydir, segment-log.ts) and four steps of the store's
 * write path that only the store can take. The Store implements it; the
 * compaction modules import this type, never the Store, so the dependency
 * runs one way (store → compaction → segment-log).
 */
import type { LogEdit } from '../segment-log.js';

export interface CompactionHost {
  /** The log: segments to compact, the keydir to move, the swap's segment-list changes. */
  readonly segmentLog: LogEdit;
  /** Hands buffered records to the OS now, acking them (the swap starts each keydir step with this). */
  flushPending(): void;
  /** Seals the active segment if it holds any record (a full compaction); throws if writes are refused. */
  sealActive(): void;
  /** Resolves when the background sealing tasks running now have finished. */
  settleBackground(): Promise<void>;
  /** Removes a key the rewrite found expired, from the keydir and the store's caches. */
  expireKey(key: string): void;
  /** Emits a 'compaction' progress event on the store (compactor.ts lists them). */
  emit(event: 'compaction', info: object): boolean;
}
