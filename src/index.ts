/** segkv's public API. The embedded engine; the client SDK joins it with the server. */

export {
  type ClientEventMap,
  type ClientOptions,
  type ClientStatus,
  connect,
  type FeedOptions,
  type FeedRecord,
  KvClient,
  type ValueEncoding,
} from './client/index.js';
export * from './engine/index.js';
export { CorruptionError, type ErrorCode, KvError } from './errors.js';
