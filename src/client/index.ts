/** The client SDK: `connect()` and its types. */
import { KvClient } from './client.js';
import type { ClientOptions } from './options.js';

export {
  type ClientEventMap,
  type ClientScanOptions,
  type ClientStatus,
  type ClusterSlotRange,
  KvClient,
} from './client.js';
export { type ClusterClientOptions, connectCluster, KvClusterClient } from './cluster.js';
export type { ValueEncoding } from './encoding.js';
export type { FeedOptions, FeedRecord } from './feed.js';
export type { ClientOptions } from './options.js';

/**
 * Opens a client and resolves once it is ready: the server answered HELLO
 * (so it is a segkv server) and AUTH, if a password is given. Rejects with
 * CONNECTION_FAILED saying why the first attempt failed (connection refused,
 * a TLS mismatch or an untrusted certificate, not a segkv server) or
 * AUTH_FAILED; the client is then closed. Later drops reconnect in the
 * background (option `reconnect`).
 *
 * With `lazyConnect: true` it resolves at once and connects on the first
 * command (commands wait in the offline queue meanwhile); `new KvClient(options)`
 * also returns at once, connecting in the background.
 *
 * The value type follows `valueEncoding`: string (utf8, default), Buffer
 * (buffer), or any serializable value (json, msgpack).
 */
export function connect(options: ClientOptions & { valueEncoding: 'buffer' }): Promise<KvClient<Buffer>>;
export function connect<T = unknown>(
  options: ClientOptions & { valueEncoding: 'json' | 'msgpack' },
): Promise<KvClient<T>>;
export function connect(options?: ClientOptions & { valueEncoding?: 'utf8' }): Promise<KvClient<string>>;
export async function connect(options?: ClientOptions): Promise<KvClient<unknown>> {
  const client = new KvClient<unknown>(options);
  if (client.options.lazyConnect) return client;
  await client.firstConnection();
  return client;
}
