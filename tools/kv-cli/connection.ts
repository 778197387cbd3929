/**
 * How kv-cli opens its SDK client: binary-safe values (Buffers), no request
 * timeout (COMPACT on a large log takes as long as it takes, as in redis-cli),
 * and a reconnect backoff capped at one second so the REPL notices a server
 * that came back quickly.
 */
import { type ClientOptions, connect, type KvClient } from '../../src/client/index.js';
import type { CliOptions } from './options.js';

/** Longest wait between two reconnect attempts, ms. */
export const RETRY_MAX_DELAY_MS = 1000;
/** Give up one connection attempt after this long, ms. */
export const CONNECT_TIMEOUT_MS = 5000;

export type CliClient = KvClient<Buffer>;

export function openClient(o: CliOptions, extra: Omit<ClientOptions, 'valueEncoding'> = {}): CliClient {
  return connect({
    host: o.host,
    port: o.port,
    ...(o.password !== undefined && { password: o.password }),
    ...(o.tls !== undefined && { tls: o.tls }),
    requestTimeoutMs: 0,
    connectTimeoutMs: CONNECT_TIMEOUT_MS,
    retryMaxDelayMs: RETRY_MAX_DELAY_MS,
    ...extra,
    valueEncoding: 'buffer',
  });
}

export function address(o: Pick<CliOptions, 'host' | 'port'>): string {
  return `${o.host}:${o.port}`;
}

/** redis-cli's words for a server that cannot be reached. */
export function cannotConnect(o: Pick<CliOptions, 'host' | 'port'>, err: unknown): string {
  const reason = err instanceof Error ? err.message : err === undefined ? 'no reply' : String(err);
  return `Could not connect to segkv at ${address(o)}: ${reason}`;
}

/**
 * Records the last connection-level error of a client (the SDK emits one per
 * failed attempt) and whether it was ever connected.
 */
export class ConnectionWatch {
  lastError: Error | undefined;
  everConnected = false;

  constructor(client: CliClient) {
    client.on('error', (err) => {
      this.lastError = err;
    });
    client.on('connect', () => {
      this.everConnected = true;
      this.lastError = undefined;
    });
  }
}
