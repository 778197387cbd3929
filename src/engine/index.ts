/** The engine for segkv's own tools and tests: the Store with its internals. Users get engine/api.ts (openStore → KvStore). */
export { type Clock, ManualClock, systemClock } from './clock.js';
export { type Fs, nodeFs } from './fs.js';
export type { Key, Value } from './keys.js';
export { MAX_KEY_BYTES, MAX_VALUE_BYTES } from './limits.js';
export type { FsyncMode, StoreOptions } from './options.js';
export {
  type BatchOp,
  type LogRecord,
  openStore,
  type RecoveryStats,
  type ScanOptions,
  type ScanPage,
  type SegmentStats,
  type SetOptions,
  Store,
  type StoreStats,
} from './store.js';
