/**
 * kv-server's settings: one table of flags, each also settable by a `SEGKV_*`
 * environment variable; flags beat env beat defaults. Resolved and validated
 * in one function; a bad value is a ConfigError whose message names the flag.
 *
 * Compaction settings are passed through to the store, which validates them:
 * `--compaction-min-dead-ratio 0.5` (or `SEGKV_COMPACTION_MIN_DEAD_RATIO=0.5`)
 * becomes the store option `compaction: { minDeadRatio: 0.5 }`.
 */
import { parseArgs } from 'node:util';
import type { FsyncMode } from '../engine/options.js';
import {
  DEFAULT_HOST,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_CLIENTS,
  DEFAULT_MAX_FRAME_BYTES,
  DEFAULT_PORT,
  MAX_MAX_FRAME_BYTES,
  MIN_MAX_FRAME_BYTES,
} from '../protocol/limits.js';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface ServerConfig {
  /** Data directory. Default `./data`. */
  dir: string;
  /** Address to bind. Default 127.0.0.1 (local only); `0.0.0.0` for every interface. */
  host: string;
  /** TCP port; 0 picks a free one (logged). Default 7379. */
  port: number;
  /** Durability mode of the store. Default `interval`. */
  fsync: FsyncMode;
  /** Period of the fsync tick in `interval` mode, ms. Default: the store's (1000). */
  fsyncIntervalMs: number | undefined;
  /** Segment size at which the store rotates, bytes. Default: the store's (64 MiB). */
  maxSegmentBytes: number | undefined;
  /** Hot-value cache size, bytes; 0 disables. Default: the store's (64 MiB). */
  cacheBytes: number | undefined;
  /** Largest request frame body, bytes, checked on the length prefix. Default 64 MiB. */
  maxFrameBytes: number;
  /** Simultaneous connections; more are refused with MAX_CLIENTS. Default 10000. */
  maxClients: number;
  /** Close a connection idle this long, ms; 0 never. Default 0. */
  idleTimeoutMs: number;
  /** Require AUTH with this password. Default none. Prefer SEGKV_PASSWORD: flags show in `ps`. */
  password: string | undefined;
  /** TLS certificate and key (PEM file paths); both or neither. Default: plain TCP. */
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  /** pino log level. Default `info`. */
  logLevel: LogLevel;
  /** The store's `compaction` options, from `--compaction-*` flags and `SEGKV_COMPACTION_*` env (camelCased). */
  compaction: Record<string, string | number | boolean>;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Kind = 'string' | 'int' | 'fsync' | 'level';

interface Setting {
  key: keyof Omit<ServerConfig, 'compaction'>;
  flag: string;
  kind: Kind;
  fallback: string | number | undefined;
  help: string;
  min?: number;
  max?: number;
}

const LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** The settings table: flag name, env name (derived), kind, default, help. */
export const SETTINGS: readonly Setting[] = [
  { key: 'dir', flag: 'dir', kind: 'string', fallback: './data', help: 'data directory' },
  { key: 'host', flag: 'host', kind: 'string', fallback: DEFAULT_HOST, help: 'address to bind' },
  {
    key: 'port',
    flag: 'port',
    kind: 'int',
    fallback: DEFAULT_PORT,
    min: 0,
    max: 65535,
    help: 'TCP port (0 = any free port)',
  },
  {
    key: 'fsync',
    flag: 'fsync',
    kind: 'fsync',
    fallback: 'interval',
    help: 'durability: always (fsync before each ack, group commit) | interval | never',
  },
  {
    key: 'fsyncIntervalMs',
    flag: 'fsync-interval-ms',
    kind: 'int',
    fallback: undefined,
    min: 1,
    help: 'fsync period in interval mode, ms (store default 1000)',
  },
  {
    key: 'maxSegmentBytes',
    flag: 'max-segment-bytes',
    kind: 'int',
    fallback: undefined,
    min: 1,
    help: 'rotate the active segment at this size, bytes (store default 64 MiB)',
  },
  {
    key: 'cacheBytes',
    flag: 'cache-bytes',
    kind: 'int',
    fallback: undefined,
    min: 0,
    help: 'hot-value cache size, bytes; 0 disables (store default 64 MiB)',
  },
  {
    key: 'maxFrameBytes',
    flag: 'max-frame-bytes',
    kind: 'int',
    fallback: DEFAULT_MAX_FRAME_BYTES,
    min: MIN_MAX_FRAME_BYTES,
    max: MAX_MAX_FRAME_BYTES,
    help: 'largest request frame body, bytes',
  },
  {
    key: 'maxClients',
    flag: 'max-clients',
    kind: 'int',
    fallback: DEFAULT_MAX_CLIENTS,
    min: 1,
    help: 'simultaneous connections; more are refused with MAX_CLIENTS',
  },
  {
    key: 'idleTimeoutMs',
    flag: 'idle-timeout-ms',
    kind: 'int',
    fallback: DEFAULT_IDLE_TIMEOUT_MS,
    min: 0,
    help: 'close connections idle this long, ms; 0 = never',
  },
  {
    key: 'password',
    flag: 'password',
    kind: 'string',
    fallback: undefined,
    help: 'require AUTH with this password (prefer the env variable: flags show in ps)',
  },
  {
    key: 'tlsCert',
    flag: 'tls-cert',
    kind: 'string',
    fallback: undefined,
    help: 'TLS certificate, PEM file',
  },
  { key: 'tlsKey', flag: 'tls-key', kind: 'string', fallback: undefined, help: 'TLS private key, PEM file' },
  {
    key: 'logLevel',
    flag: 'log-level',
    kind: 'level',
    fallback: 'info',
    help: `log level on stderr: ${LEVELS.join(' | ')}`,
  },
];

const COMPACTION_PREFIX = 'compaction-';

export function envName(flag: string): string {
  return `SEGKV_${flag.toUpperCase().replace(/-/g, '_')}`;
}

function camel(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

function passThroughValue(raw: string): string | number | boolean {
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  return raw.trim() !== '' && Number.isFinite(Number(raw)) ? Number(raw) : raw;
}

export function helpText(): string {
  const lines = [
    'Usage: kv-server [options]',
    '',
    'Serves a segkv store over TCP (protocol/PROTOCOL.md). Every option can also be set',
    'by the environment variable shown; a flag beats the environment, which beats the default.',
    '',
  ];
  for (const s of SETTINGS) {
    const def = s.fallback === undefined ? '' : ` (default: ${s.fallback})`;
    lines.push(`  --${s.flag} <value>`.padEnd(32) + `${s.help}${def}`);
    lines.push(`${' '.repeat(32)}env ${envName(s.flag)}`);
  }
  lines.push(
    `  --${COMPACTION_PREFIX}<name> <value>`.padEnd(32) +
      'store option compaction.<name>: min-dead-ratio, min-dead-bytes, max-dead-bytes, auto,',
    `${' '.repeat(32)}check-interval-ms, min-interval-ms, max-backoff-ms (e.g. --compaction-auto false)`,
    `${' '.repeat(32)}env SEGKV_COMPACTION_<NAME>`,
    '  --help'.padEnd(32) + 'print this help and exit',
    '',
    'Signals: SIGTERM/SIGINT stop accepting, finish in-flight requests, sync and close the store.',
  );
  return lines.join('\n');
}

function convert(s: Setting, raw: string, source: string): string | number {
  switch (s.kind) {
    case 'string':
      if (raw === '') throw new ConfigError(`${source} must not be empty`);
      return raw;
    case 'int': {
      const n = /^-?\d+$/.test(raw.trim()) ? Number(raw) : Number.NaN;
      const min = s.min ?? 0;
      const max = s.max ?? Number.MAX_SAFE_INTEGER;
      if (!Number.isSafeInteger(n) || n < min || n > max) {
        throw new ConfigError(`${source} must be an integer from ${min} to ${max}, got '${raw}'`);
      }
      return n;
    }
    case 'fsync':
      if (raw !== 'always' && raw !== 'interval' && raw !== 'never') {
        throw new ConfigError(`${source} must be always, interval or never, got '${raw}'`);
      }
      return raw;
    case 'level':
      if (!(LEVELS as readonly string[]).includes(raw)) {
        throw new ConfigError(`${source} must be one of ${LEVELS.join(', ')}, got '${raw}'`);
      }
      return raw;
  }
}

/** Resolves flags, env and defaults. Returns 'help' for --help. Throws ConfigError. */
export function parseConfig(argv: readonly string[], env: NodeJS.ProcessEnv): ServerConfig | 'help' {
  // Pass-through compaction flags first: parseArgs cannot know their names.
  const compaction: Record<string, string | number | boolean> = {};
  for (const [name, raw] of Object.entries(env)) {
    if (name.startsWith('SEGKV_COMPACTION_') && raw !== undefined) {
      const flag = name.slice('SEGKV_COMPACTION_'.length).toLowerCase().replace(/_/g, '-');
      compaction[camel(flag)] = passThroughValue(raw);
    }
  }
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg.startsWith(`--${COMPACTION_PREFIX}`)) {
      const eq = arg.indexOf('=');
      const flag = arg.slice(2, eq < 0 ? undefined : eq);
      const raw = eq < 0 ? argv[++i] : arg.slice(eq + 1);
      if (raw === undefined || flag.length <= COMPACTION_PREFIX.length) {
        throw new ConfigError(`--${flag} needs a value`);
      }
      compaction[camel(flag.slice(COMPACTION_PREFIX.length))] = passThroughValue(raw);
    } else rest.push(arg);
  }
  const options: Record<string, { type: 'string' | 'boolean' }> = { help: { type: 'boolean' } };
  for (const s of SETTINGS) options[s.flag] = { type: 'string' };
  let values: Record<string, string | boolean | undefined>;
  try {
    const parsed = parseArgs({ args: rest, options, strict: true, allowPositionals: false });
    values = parsed.values as Record<string, string | boolean | undefined>;
  } catch (err) {
    throw new ConfigError(`${(err as Error).message}; see kv-server --help`);
  }
  if (values.help === true) return 'help';
  const out: Record<string, unknown> = { compaction };
  for (const s of SETTINGS) {
    const flagValue = values[s.flag];
    const envValue = env[envName(s.flag)];
    if (typeof flagValue === 'string') out[s.key] = convert(s, flagValue, `--${s.flag}`);
    else if (envValue !== undefined && envValue !== '') out[s.key] = convert(s, envValue, envName(s.flag));
    else out[s.key] = s.fallback;
  }
  const config = out as unknown as ServerConfig;
  if ((config.tlsCert === undefined) !== (config.tlsKey === undefined)) {
    throw new ConfigError('--tls-cert and --tls-key go together: give both or neither');
  }
  return config;
}
