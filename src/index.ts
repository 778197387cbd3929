/** segkv's public API: the client SDK and the embedded engine (engine/api.ts: only what a user may call). */

export {
  type ClientEventMap,
  type ClientOptions,
  type ClientScanOptions,
  type ClientStatus,
  type ClusterClientOptions,
  type ClusterSlotRange,
  connect,
  connectCluster,
  type FeedOptions,
  type FeedRecord,
  KvClient,
  KvClusterClient,
  type ValueEncoding,
} from './client/index.js';
export * from './engine/api.js';
export { CorruptionError, type ErrorCode, KvError } from './errors.js';
