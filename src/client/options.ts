/**
 * Options of `connect()`, each with unit, default and trade-off, and the one
 * function that resolves defaults and rejects bad values.
 */
import type { ConnectionOptions } from 'node:tls';
import { checkOptions, invalid } from '../engine/arguments.js';
import { KvError } from '../errors.js';
import {
  DEFAULT_CLIENT_MAX_REPLY_BYTES,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_HELLO_TIMEOUT_MS,
  DEFAULT_HOST,
  DEFAULT_OFFLINE_QUEUE_LIMIT,
  DEFAULT_PORT,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_RETRY_MAX_DELAY_MS,
  DEFAULT_RETRY_MIN_DELAY_MS,
} from '../protocol/limits.js';
import type { ValueEncoding } from './encoding.js';

export interface ClientOptions {
  /** Server address. Default 127.0.0.1. */
  host?: string;
  /** Server port. Default 7379. */
  port?: number;
  /** Sent with AUTH on every (re)connect, before any other command. Default: none. */
  password?: string;
  /** Connect with TLS: `true`, or node:tls options (e.g. `{ ca }`, `{ rejectUnauthorized: false }`). Default: plain TCP. */
  tls?: boolean | ConnectionOptions;
  /** How values are turned into stored bytes and back. Default `utf8`. */
  valueEncoding?: ValueEncoding;
  /** Reject a command with TIMEOUT if no reply came this many ms after it was issued (offline time included); 0 = wait forever. Default 10000. */
  requestTimeoutMs?: number;
  /** Give up a connection attempt after this many ms (TCP, then TLS). Default 10000. */
  connectTimeoutMs?: number;
  /**
   * Once connected, wait this many ms for the server's answer to HELLO, the
   * handshake that proves it is a segkv server; a peer that stays silent
   * (e.g. Redis on that port) fails the attempt with CONNECTION_FAILED
   * "not a segkv server". Default 2000.
   */
  helloTimeoutMs?: number;
  /**
   * Do not connect until the first command (or `ready()`): `connect()`
   * resolves at once, without knowing whether the server is there. Default
   * false: `connect()` resolves once the server answered HELLO (and AUTH),
   * and rejects with the reason if the first attempt fails.
   */
  lazyConnect?: boolean;
  /** Reconnect after the connection drops. Default true. */
  reconnect?: boolean;
  /** Reconnect backoff: first delay in ms, doubled per attempt up to `retryMaxDelayMs`. Defaults 50 and 2000. */
  retryMinDelayMs?: number;
  retryMaxDelayMs?: number;
  /** Consecutive failed connection attempts before the client gives up and closes. Default: unlimited. */
  maxRetries?: number;
  /** Commands held while not connected; more are rejected at once with CONNECTION_CLOSED. Default 10000. */
  offlineQueueLimit?: number;
  /** Largest reply frame accepted, bytes; a bigger one drops the connection. Default 1 GiB. */
  maxReplyBytes?: number;
}

export interface ResolvedClientOptions {
  host: string;
  port: number;
  password: string | undefined;
  tls: ConnectionOptions | undefined;
  valueEncoding: ValueEncoding;
  requestTimeoutMs: number;
  connectTimeoutMs: number;
  helloTimeoutMs: number;
  lazyConnect: boolean;
  reconnect: boolean;
  retryMinDelayMs: number;
  retryMaxDelayMs: number;
  maxRetries: number;
  offlineQueueLimit: number;
  maxReplyBytes: number;
}

const FIELDS = [
  'host',
  'port',
  'password',
  'tls',
  'valueEncoding',
  'requestTimeoutMs',
  'connectTimeoutMs',
  'helloTimeoutMs',
  'lazyConnect',
  'reconnect',
  'retryMinDelayMs',
  'retryMaxDelayMs',
  'maxRetries',
  'offlineQueueLimit',
  'maxReplyBytes',
];

function int(name: string, v: number | undefined, fallback: number, min: number, max: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number') throw invalid(`client option ${name} must be a number, got ${typeof v}`);
  if (!(Number.isInteger(v) || v === Number.POSITIVE_INFINITY) || v < min || v > max) {
    throw new KvError(
      'INVALID_ARGUMENT',
      `client option ${name} must be an integer from ${min} to ${max}, got ${v}`,
    );
  }
  return v;
}

function bool(name: string, v: boolean | undefined, fallback: boolean): boolean {
  if (v === undefined) return fallback;
  if (typeof v !== 'boolean') throw invalid(`client option ${name} must be a boolean, got ${typeof v}`);
  return v;
}

function str(name: string, v: string | undefined): string | undefined {
  if (v !== undefined && typeof v !== 'string') {
    throw invalid(`client option ${name} must be a string, got ${typeof v}`);
  }
  return v;
}

export function resolveClientOptions(options: ClientOptions = {}): ResolvedClientOptions {
  const o = checkOptions<ClientOptions>('connect', options, FIELDS) ?? {};
  const tls = o.tls;
  if (tls !== undefined && typeof tls !== 'boolean' && (tls === null || typeof tls !== 'object')) {
    throw invalid(`client option tls must be true, false or node:tls options, got ${typeof tls}`);
  }
  return {
    host: str('host', o.host) ?? DEFAULT_HOST,
    port: int('port', o.port, DEFAULT_PORT, 1, 65535),
    password: str('password', o.password),
    tls: tls === true ? {} : tls === false || tls === undefined ? undefined : tls,
    valueEncoding: o.valueEncoding ?? 'utf8',
    requestTimeoutMs: int('requestTimeoutMs', o.requestTimeoutMs, DEFAULT_REQUEST_TIMEOUT_MS, 0, 2 ** 31 - 1),
    connectTimeoutMs: int('connectTimeoutMs', o.connectTimeoutMs, DEFAULT_CONNECT_TIMEOUT_MS, 1, 2 ** 31 - 1),
    helloTimeoutMs: int('helloTimeoutMs', o.helloTimeoutMs, DEFAULT_HELLO_TIMEOUT_MS, 1, 2 ** 31 - 1),
    lazyConnect: bool('lazyConnect', o.lazyConnect, false),
    reconnect: bool('reconnect', o.reconnect, true),
    retryMinDelayMs: int('retryMinDelayMs', o.retryMinDelayMs, DEFAULT_RETRY_MIN_DELAY_MS, 0, 2 ** 31 - 1),
    retryMaxDelayMs: int('retryMaxDelayMs', o.retryMaxDelayMs, DEFAULT_RETRY_MAX_DELAY_MS, 0, 2 ** 31 - 1),
    maxRetries: int('maxRetries', o.maxRetries, Number.POSITIVE_INFINITY, 0, Number.POSITIVE_INFINITY),
    offlineQueueLimit: int(
      'offlineQueueLimit',
      o.offlineQueueLimit,
      DEFAULT_OFFLINE_QUEUE_LIMIT,
      0,
      2 ** 31 - 1,
    ),
    maxReplyBytes: int('maxReplyBytes', o.maxReplyBytes, DEFAULT_CLIENT_MAX_REPLY_BYTES, 1024, 2 ** 32 - 1),
  };
}
