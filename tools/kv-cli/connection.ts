/**
 * How kv-cli opens its SDK client: binary-safe values (Buffers), no request
 * timeout (COMPACT on a large log takes as long as it takes, as in redis-cli),
 * a short HELLO handshake (a port that is not segkv fails in about a second),
 * and a reconnect backoff capped at one second so the REPL notices a server
 * that came back quickly.
 */
import { type ClientOptions, KvClient } from '../../src/client/index.js';
import type { CliOptions } from './options.js';

/** Longest wait between two reconnect attempts, ms. */
export const RETRY_MAX_DELAY_MS = 1000;
/** Give up one connection attempt after this long, ms. */
export const CONNECT_TIMEOUT_MS = 5000;
/** A peer that does not answer HELLO within this long is not a segkv server, ms. */
export const HELLO_TIMEOUT_MS = 1000;

export type CliClient = KvClient<Buffer>;

export function openClient(o: CliOptions, extra: Omit<ClientOptions, 'valueEncoding'> = {}): CliClient {
  return new KvClient<Buffer>({
    host: o.host,
    port: o.port,
    ...(o.password !== undefined && { password: o.password }),
    ...(o.tls !== undefined && { tls: o.tls }),
    requestTimeoutMs: 0,
    connectTimeoutMs: CONNECT_TIMEOUT_MS,
    helloTimeoutMs: HELLO_TIMEOUT_MS,
    retryMaxDelayMs: RETRY_MAX_DELAY_MS,
    ...extra,
    valueEncoding: 'buffer',
  });
}

export function address(o: Pick<CliOptions, 'host' | 'port'>): string {
  return `${o.host}:${o.port}`;
}

/** redis-cli's words for a server that cannot be reached; the SDK's reason without repeating the address. */
export function cannotConnect(o: Pick<CliOptions, 'host' | 'port'>, err: unknown): string {
  const at = address(o);
  const reason = (err instanceof Error ? err.message : err === undefined ? 'no reply' : String(err))
    .replace(`cannot connect to ${at}: `, '')
    .replace(`${at} is not a segkv server`, 'it is not a segkv server');
  return `Could not connect to segkv at ${at}: ${reason}`;
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
