/** segkv's public API. The embedded engine; the client SDK joins it with the server. */
export * from './engine/index.js';
export { CorruptionError, type ErrorCode, KvError } from './errors.js';
