/** The client SDK: `connect()` and its types. */
import { KvClient } from './client.js';
import type { ClientOptions } from './options.js';

export { type ClientEventMap, type ClientStatus, KvClient } from './client.js';
export type { ValueEncoding } from './encoding.js';
export type { FeedOptions, FeedRecord } from './feed.js';
export type { ClientOptions } from './options.js';

/**
 * Opens a client. Returns at once; commands issued before the connection is
 * ready wait in the offline queue. `await client.ready()` to wait for it.
 * The value type follows `valueEncoding`: string (utf8, default), Buffer
 * (buffer), or any serializable value (json, msgpack).
 */
export function connect(options: ClientOptions & { valueEncoding: 'buffer' }): KvClient<Buffer>;
export function connect<T = unknown>(
  options: ClientOptions & { valueEncoding: 'json' | 'msgpack' },
): KvClient<T>;
export function connect(options?: ClientOptions & { valueEncoding?: 'utf8' }): KvClient<string>;
export function connect(options?: ClientOptions): KvClient<unknown> {
  return new KvClient<unknown>(options);
}
