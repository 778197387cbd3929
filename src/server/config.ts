/**
 * kv-server's settings: one table of flags, each also settable by a `SEGKV_*`
 * environment variable and by a field of an optional JSON config file
 * (`--config FILE` or SEGKV_CONFIG). One precedence: flag > env > file >
 * default. Resolved and validated in one function (resolveCommandLine); a bad
 * value is a ConfigError whose message names the flag, variable or file field.
 *
 * The config file is one JSON object whose fields are the camelCase names of
 * ServerConfig (`port`, `maxSegmentBytes`, `compaction: {minDeadRatio}`, …);
 * unknown fields are rejected, `null` means "not set". `kv-server
 * --print-config` prints the effective settings in that same shape, so its
 * output is a valid config file, except a redacted password, which is refused.
 *
 * Compaction settings are the store's options, checked here by the store's
 * rules (config-check.ts): `--compaction-min-dead-ratio 0.5` (or
 * `SEGKV_COMPACTION_MIN_DEAD_RATIO=0.5`) becomes the store option
 * `compaction: { minDeadRatio: 0.5 }`. Unknown flags, `SEGKV_*` variables
 * and file fields are refused, with the closest known name suggested.
 */

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DEFAULT_LEASE_TTL_MS, MIN_LEASE_TTL_MS } from '../cluster/limits.js';
import {
  DEFAULT_CACHE_BYTES,
  DEFAULT_FSYNC_INTERVAL_MS,
  DEFAULT_MAX_SEGMENT_BYTES,
  DEFAULT_SLOT_CACHE_BYTES,
  MAX_SLOT_CACHE_BYTES,
} from '../engine/limits.js';
import { type FsyncMode, resolveCompaction } from '../engine/options.js';
import {
  DEFAULT_HOST,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_CLIENTS,
  DEFAULT_MAX_FRAME_BYTES,
  DEFAULT_MIN_REPLICAS_TIMEOUT_MS,
  DEFAULT_PORT,
  MAX_MAX_FRAME_BYTES,
  MEMORY_REDUCER_IDLE_MS,
  MIN_MAX_FRAME_BYTES,
} from '../protocol/limits.js';
import {
  COMPACTION_ENV_PREFIX,
  COMPACTION_FLAG_PREFIX,
  COMPACTION_KEYS,
  type CompactionKey,
  type CompactionSettings,
  ConfigError,
  compactionEnv,
  compactionFlag,
  compactionFromJson,
  compactionFromText,
  OTHER_PROGRAMS_ENV,
  suggestion,
} from './config-check.js';

export { COMPACTION_KEYS, ConfigError };

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/** `json`: one JSON object per line (for log shippers); `pretty`: coloured, readable lines (pino-pretty). */
export type LogFormat = 'json' | 'pretty';

export interface ServerConfig {
  /** Data directory. Default `./data`. */
  dir: string;
  /** Address to bind. Default 127.0.0.1 (local only); `0.0.0.0` for every interface. */
  host: string;
  /** TCP port; 0 picks a free one (logged). Default 7379. */
  port: number;
  /** Durability mode of the store. Default `interval`. */
  fsync: FsyncMode;
  /** Period of the fsync tick in `interval` mode, ms. Default 1000. Shorter loses less on power loss, costs more fsyncs. */
  fsyncIntervalMs: number;
  /** Segment size at which the store rotates, bytes. Default 64 MiB. Smaller compacts sooner, means more files. */
  maxSegmentBytes: number;
  /** Hot-value cache size, bytes; 0 disables. Default 64 MiB. More memory, fewer preads. */
  cacheBytes: number;
  /** Small-value cache size (values up to 4 KiB, by keydir slot), bytes; 0 disables. Default 32 MiB. */
  slotCacheBytes: number;
  /** Largest request frame body, bytes, checked on the length prefix. Default 64 MiB. */
  maxFrameBytes: number;
  /** Simultaneous connections; more are refused with MAX_CLIENTS. Default 10000. */
  maxClients: number;
  /** Close a connection idle this long, ms; 0 never. Default 0. */
  idleTimeoutMs: number;
  /**
   * After this long with nothing received following work, run V8's
   * memory-reducing GC once (memory-reducer.ts: gives back tens of MiB
   * after a load; a request arriving meanwhile waits 40-150 ms), ms; 0 never.
   * Default 1000.
   */
  idleGcMs: number;
  /** Require AUTH with this password. Default none. Prefer SEGKV_PASSWORD: flags show in `ps`. */
  password: string | undefined;
  /** TLS certificate, PEM file path; needs tlsKey too. Default: none (plain TCP). TLS costs CPU per byte. */
  tlsCert: string | undefined;
  /** TLS private key, PEM file path; needs tlsCert too. Default: none. */
  tlsKey: string | undefined;
  /** pino log level. Default `info`. `debug` logs every connection; `warn` only problems. */
  logLevel: LogLevel;
  /** Log format on stderr. Default (undefined): `pretty` when stderr is a terminal, else `json`. */
  logFormat: LogFormat | undefined;
  /**
   * Log every command that takes at least this long, ms (name, duration, key count; never values).
   * Default undefined: off, and requests are not timed. 0 logs every command (debugging only).
   */
  slowlogThresholdMs: number | undefined;
  /**
   * Serve Prometheus metrics over HTTP on this port (same host as the server), path /metrics;
   * 0 picks a free port (logged). Default undefined: off. When on, each request is timed
   * (two performance.now() calls) for the per-command latency histograms.
   */
  metricsPort: number | undefined;
  /**
   * Start as a read-only replica of this primary, `HOST:PORT`; the replica sends `password` to it.
   * Default undefined: a primary. `REPLICAOF` changes it at run time (not saved).
   */
  replicaOf: string | undefined;
  /** Cluster mode (with `etcd` and `shard`): the cluster's name in etcd. Default undefined: no cluster. */
  cluster: string | undefined;
  /** etcd endpoints, comma-separated URLs (cluster mode). */
  etcd: string | undefined;
  /** This node's shard (cluster mode); `kv-cluster create` names them. */
  shard: string | undefined;
  /** This node's name in the cluster; default `host-port` of its announced address. */
  nodeName: string | undefined;
  /** The address other nodes and clients reach this node at, HOST:PORT; default --host and the listening port. */
  announce: string | undefined;
  /** Cluster mode: lease TTL in ms (whole seconds): how soon a silent primary is replaced. */
  clusterLeaseMs: number;
  /**
   * Acknowledge a write only once this many replicas have it (Kafka's acks=all with
   * min.insync.replicas). Default 0: replicas follow asynchronously. Fewer replicas
   * connected: writes are refused (NOREPLICAS); slower ones: writes wait (see minReplicasTimeoutMs).
   */
  minReplicasAck: number;
  /** How long a write waits for its replica acknowledgements before NOT_ENOUGH_REPLICAS, ms. Default 10000. */
  minReplicasTimeoutMs: number;
  /** The store's `compaction` options, from `--compaction-*` flags and `SEGKV_COMPACTION_*` env (camelCased), checked. */
  compaction: CompactionSettings;
}

type Kind = 'string' | 'int' | 'fsync' | 'level' | 'format';

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
const FORMATS: readonly LogFormat[] = ['json', 'pretty'];

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
    fallback: DEFAULT_FSYNC_INTERVAL_MS,
    min: 1,
    help: 'fsync period in interval mode, ms',
  },
  {
    key: 'maxSegmentBytes',
    flag: 'max-segment-bytes',
    kind: 'int',
    fallback: DEFAULT_MAX_SEGMENT_BYTES,
    min: 1,
    help: 'rotate the active segment at this size, bytes',
  },
  {
    key: 'cacheBytes',
    flag: 'cache-bytes',
    kind: 'int',
    fallback: DEFAULT_CACHE_BYTES,
    min: 0,
    help: 'hot-value cache size, bytes; 0 disables',
  },
  {
    key: 'slotCacheBytes',
    flag: 'slot-cache-bytes',
    kind: 'int',
    fallback: DEFAULT_SLOT_CACHE_BYTES,
    min: 0,
    max: MAX_SLOT_CACHE_BYTES,
    help: 'small-value cache size (values up to 4 KiB), bytes; 0 disables',
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
    key: 'idleGcMs',
    flag: 'idle-gc-ms',
    kind: 'int',
    fallback: MEMORY_REDUCER_IDLE_MS,
    min: 0,
    help: 'after this long quiet following work, a memory-reducing GC (a request meanwhile waits it out), ms; 0 = never',
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
  {
    key: 'logFormat',
    flag: 'log-format',
    kind: 'format',
    fallback: undefined,
    help: 'log format on stderr: json | pretty (default: pretty on a terminal, else json)',
  },
  {
    key: 'slowlogThresholdMs',
    flag: 'slowlog-threshold-ms',
    kind: 'int',
    fallback: undefined,
    min: 0,
    help: 'log commands taking at least this long, ms (default: off)',
  },
  {
    key: 'metricsPort',
    flag: 'metrics-port',
    kind: 'int',
    fallback: undefined,
    min: 0,
    max: 65535,
    help: 'serve Prometheus metrics on this port at /metrics, same host (default: off; 0 = any free port)',
  },
  {
    key: 'replicaOf',
    flag: 'replica-of',
    kind: 'string',
    fallback: undefined,
    help: 'start as a read-only replica of this primary, HOST:PORT (REPLICAOF NO ONE promotes it)',
  },
  {
    key: 'cluster',
    flag: 'cluster',
    kind: 'string',
    fallback: undefined,
    help: 'join this cluster (needs --etcd and --shard; create it with kv-cluster create)',
  },
  {
    key: 'etcd',
    flag: 'etcd',
    kind: 'string',
    fallback: undefined,
    help: 'etcd endpoints for cluster mode, comma-separated URLs (http://127.0.0.1:2379)',
  },
  {
    key: 'shard',
    flag: 'shard',
    kind: 'string',
    fallback: undefined,
    help: "this node's shard in the cluster",
  },
  {
    key: 'nodeName',
    flag: 'node-name',
    kind: 'string',
    fallback: undefined,
    help: "this node's name in the cluster (default HOST-PORT of its announced address)",
  },
  {
    key: 'announce',
    flag: 'announce',
    kind: 'string',
    fallback: undefined,
    help: 'the HOST:PORT other nodes and clients reach this node at (default --host and the port)',
  },
  {
    key: 'clusterLeaseMs',
    flag: 'cluster-lease-ms',
    kind: 'int',
    fallback: DEFAULT_LEASE_TTL_MS,
    min: MIN_LEASE_TTL_MS,
    help: 'cluster mode: lease TTL, ms, whole seconds: a primary silent this long is replaced',
  },
  {
    key: 'minReplicasAck',
    flag: 'min-replicas-ack',
    kind: 'int',
    fallback: 0,
    min: 0,
    help: 'acknowledge a write only once this many replicas have it (0 = do not wait)',
  },
  {
    key: 'minReplicasTimeoutMs',
    flag: 'min-replicas-timeout-ms',
    kind: 'int',
    fallback: DEFAULT_MIN_REPLICAS_TIMEOUT_MS,
    min: 1,
    help: 'how long a write waits for --min-replicas-ack replicas before NOT_ENOUGH_REPLICAS, ms',
  },
];

/** The environment variable naming the config file when `--config` is not given. */
export const CONFIG_ENV = 'SEGKV_CONFIG';

/** What `--print-config` shows instead of the password. */
export const REDACTED = '<redacted>';

export function envName(flag: string): string {
  return `SEGKV_${flag.toUpperCase().replace(/-/g, '_')}`;
}

/** Every `SEGKV_*` variable kv-server reads. */
function serverEnvNames(): string[] {
  return [...SETTINGS.map((s) => envName(s.flag)), ...COMPACTION_KEYS.map(compactionEnv), CONFIG_ENV];
}

/** Every flag kv-server takes, with its dashes. */
function flagNames(): string[] {
  const flags = [...SETTINGS.map((s) => s.flag), ...COMPACTION_KEYS.map(compactionFlag)];
  return [...flags, 'config', 'print-config', 'help', 'version'].map((f) => `--${f}`);
}

/**
 * An engine message in the operator's terms: `option maxSegmentBytes must be
 * …` names the store option, which the operator set as `--max-segment-bytes`
 * (or its SEGKV_ variable or config-file field): it says the flag instead.
 */
export function inFlagTerms(message: string): string {
  return message.replace(
    /\boption (compaction\.)?(\w+)/g,
    (whole, compaction: string | undefined, key: string) => {
      if (compaction) {
        return COMPACTION_KEYS.includes(key as CompactionKey)
          ? `--${compactionFlag(key as CompactionKey)}`
          : whole;
      }
      const setting = SETTINGS.find((st) => st.key === key);
      return setting ? `--${setting.flag}` : whole;
    },
  );
}

export function helpText(): string {
  const lines = [
    'Usage: kv-server [options]',
    '',
    'Serves a segkv store over TCP (protocol/PROTOCOL.md). Every option can also be set by the',
    'environment variable shown, or by its camelCase field in a JSON config file (--config).',
    'Precedence: flag > environment > config file > default.',
    '',
  ];
  for (const s of SETTINGS) {
    const def = s.fallback === undefined ? '' : ` (default: ${s.fallback})`;
    lines.push(`  --${s.flag} <value>`.padEnd(34) + `${s.help}${def}`);
    lines.push(`${' '.repeat(34)}env ${envName(s.flag)}`);
  }
  lines.push(
    `  --${COMPACTION_FLAG_PREFIX}<name> <value>`.padEnd(34) +
      'store option compaction.<name>: min-dead-ratio, min-dead-bytes, max-dead-bytes, auto,',
    `${' '.repeat(34)}check-interval-ms, min-interval-ms, max-backoff-ms (e.g. --compaction-auto false)`,
    `${' '.repeat(34)}env SEGKV_COMPACTION_<NAME>`,
    '  --config <file>'.padEnd(34) +
      'read settings from this JSON file (fields as --print-config shows them)',
    `${' '.repeat(34)}env ${CONFIG_ENV}`,
    '  --print-config'.padEnd(34) + 'print the effective settings as JSON (password redacted) and exit',
    '  --version, -v'.padEnd(34) + 'print the version and exit',
    '  --help, -h'.padEnd(34) + 'print this help and exit',
    '',
    'Signals: SIGTERM/SIGINT stop accepting, finish in-flight requests, sync and close the store.',
  );
  return lines.join('\n');
}

function checkInt(s: Setting, n: number, source: string, shown: string): number {
  const min = s.min ?? 0;
  const max = s.max ?? Number.MAX_SAFE_INTEGER;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new ConfigError(`${source} must be an integer from ${min} to ${max}, got ${shown}`);
  }
  return n;
}

function checkWord(s: Setting, raw: string, source: string, shown: string): string {
  switch (s.kind) {
    case 'fsync':
      if (raw !== 'always' && raw !== 'interval' && raw !== 'never') {
        throw new ConfigError(`${source} must be always, interval or never, got ${shown}`);
      }
      return raw;
    case 'level':
      if (!(LEVELS as readonly string[]).includes(raw)) {
        throw new ConfigError(`${source} must be one of ${LEVELS.join(', ')}, got ${shown}`);
      }
      return raw;
    case 'format':
      if (!(FORMATS as readonly string[]).includes(raw)) {
        throw new ConfigError(`${source} must be one of ${FORMATS.join(', ')}, got ${shown}`);
      }
      return raw;
    default:
      if (raw === '') throw new ConfigError(`${source} must not be empty`);
      return raw;
  }
}

/** A flag or env value (a string) to the setting's type. */
function convert(s: Setting, raw: string, source: string): string | number {
  if (s.kind === 'int') {
    const n = /^-?\d+$/.test(raw.trim()) ? Number(raw) : Number.NaN;
    return checkInt(s, n, source, `'${raw}'`);
  }
  return checkWord(s, raw, source, `'${raw}'`);
}

/** A config-file value (any JSON) to the setting's type; null means not set. */
function convertJson(s: Setting, v: unknown, source: string): string | number | undefined {
  if (v === null) return undefined;
  const shown = JSON.stringify(v);
  if (s.kind === 'int') {
    if (typeof v !== 'number') throw new ConfigError(`${source} must be a number, got ${shown}`);
    return checkInt(s, v, source, shown);
  }
  if (typeof v !== 'string') throw new ConfigError(`${source} must be a string, got ${shown}`);
  return checkWord(s, v, source, shown);
}

/** Reads and validates a config file: one JSON object, known fields only. */
export function readConfigFile(
  path: string,
  readFile: (path: string) => string = (p) => readFileSync(p, 'utf8'),
): {
  settings: Partial<Record<Setting['key'], string | number>>;
  compaction: CompactionSettings;
} {
  let text: string;
  try {
    text = readFile(path);
  } catch (err) {
    throw new ConfigError(`cannot read the config file ${path}: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ConfigError(`${path} must hold one JSON object of settings, e.g. {"port": 7379}`);
  }
  const byKey = new Map(SETTINGS.map((s) => [s.key as string, s]));
  const settings: Partial<Record<Setting['key'], string | number>> = {};
  const compaction: CompactionSettings = {};
  for (const [field, v] of Object.entries(json)) {
    const source = `${path}: field '${field}'`;
    if (field === 'compaction') {
      if (v === null) continue;
      if (typeof v !== 'object' || Array.isArray(v)) {
        throw new ConfigError(`${source} must be an object such as {"minDeadRatio": 0.5}`);
      }
      for (const [name, cv] of Object.entries(v as Record<string, unknown>)) {
        const key = COMPACTION_KEYS.find((k) => k === name);
        if (key === undefined) {
          throw new ConfigError(
            `${path}: unknown field 'compaction.${name}'.${suggestion(name, COMPACTION_KEYS)} Known: ${COMPACTION_KEYS.join(', ')}`,
          );
        }
        if (cv === null) continue;
        setCompaction(compaction, key, compactionFromJson(key, cv, `${path}: field 'compaction.${name}'`));
      }
      continue;
    }
    const s = byKey.get(field);
    if (s === undefined) {
      const known = [...byKey.keys(), 'compaction'];
      throw new ConfigError(
        `${path}: unknown field '${field}'.${suggestion(field, known)} Known fields: ${known.join(', ')}`,
      );
    }
    const value = convertJson(s, v, source);
    if (s.key === 'password' && value === REDACTED) {
      throw new ConfigError(
        `${source} is the ${REDACTED} placeholder of --print-config; put the password there, or remove the field and set SEGKV_PASSWORD`,
      );
    }
    if (value !== undefined) settings[s.key] = value;
  }
  return { settings, compaction };
}

/** What the command line asks for. */
export type CommandLine =
  | { action: 'help' }
  | { action: 'version' }
  | { action: 'serve' | 'print-config'; config: ServerConfig; configFile: string | undefined };

/**
 * Resolves flags, env, the config file and defaults: the one place defaults
 * are applied. Throws ConfigError naming the flag, variable or file field.
 */
export function resolveCommandLine(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  readFile?: (path: string) => string,
): CommandLine {
  const compactionEnvValues = compactionFromEnv(env);
  // Compaction flags first: parseArgs would take `--compaction-x` for a boolean.
  const compactionFlags: CompactionSettings = {};
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith(`--${COMPACTION_FLAG_PREFIX}`)) {
      rest.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const flag = arg.slice(0, eq < 0 ? undefined : eq);
    const key = COMPACTION_KEYS.find((k) => `--${compactionFlag(k)}` === flag);
    if (key === undefined) {
      throw new ConfigError(
        `unknown option ${flag}.${suggestion(flag, flagNames())} See kv-server --help for the --compaction-* flags`,
      );
    }
    const raw = eq < 0 ? argv[++i] : arg.slice(eq + 1);
    if (raw === undefined) throw new ConfigError(`${flag} needs a value`);
    setCompaction(compactionFlags, key, compactionFromText(key, raw, flag));
  }
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    help: { type: 'boolean', short: 'h' },
    version: { type: 'boolean', short: 'v' },
    'print-config': { type: 'boolean' },
    config: { type: 'string' },
  };
  for (const s of SETTINGS) options[s.flag] = { type: 'string' };
  let values: Record<string, string | boolean | undefined>;
  try {
    const parsed = parseArgs({ args: rest, options, strict: true, allowPositionals: false });
    values = parsed.values as Record<string, string | boolean | undefined>;
  } catch (err) {
    const unknown = /^Unknown option '([^']+)'/.exec((err as Error).message)?.[1];
    const hint = unknown === undefined ? '' : suggestion(unknown, flagNames());
    throw new ConfigError(`${(err as Error).message}.${hint} See kv-server --help`);
  }
  if (values.help === true) return { action: 'help' };
  if (values.version === true) return { action: 'version' };

  const configFlag = values.config;
  const configEnv = env[CONFIG_ENV];
  const configFile =
    typeof configFlag === 'string'
      ? configFlag
      : configEnv !== undefined && configEnv !== ''
        ? configEnv
        : undefined;
  const file =
    configFile === undefined ? { settings: {}, compaction: {} } : readConfigFile(configFile, readFile);

  const out: Record<string, unknown> = {
    compaction: { ...file.compaction, ...compactionEnvValues, ...compactionFlags },
  };
  for (const s of SETTINGS) {
    const flagValue = values[s.flag];
    const envValue = env[envName(s.flag)];
    const fileValue = file.settings[s.key];
    if (typeof flagValue === 'string') out[s.key] = convert(s, flagValue, `--${s.flag}`);
    else if (envValue !== undefined && envValue !== '') out[s.key] = convert(s, envValue, envName(s.flag));
    else if (fileValue !== undefined) out[s.key] = fileValue;
    else out[s.key] = s.fallback;
  }
  const config = out as unknown as ServerConfig;
  if ((config.tlsCert === undefined) !== (config.tlsKey === undefined)) {
    throw new ConfigError('--tls-cert and --tls-key go together: give both or neither');
  }
  if (config.metricsPort !== undefined && config.metricsPort !== 0 && config.metricsPort === config.port) {
    throw new ConfigError(`--metrics-port must differ from --port (both ${config.port})`);
  }
  return { action: values['print-config'] === true ? 'print-config' : 'serve', config, configFile };
}

/**
 * The `SEGKV_COMPACTION_*` variables as compaction options, checked; refuses
 * any `SEGKV_*` variable that neither kv-server nor another segkv program reads.
 */
function compactionFromEnv(env: NodeJS.ProcessEnv): CompactionSettings {
  const known = new Set([...serverEnvNames(), ...Object.keys(OTHER_PROGRAMS_ENV)]);
  const out: CompactionSettings = {};
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('SEGKV_') || raw === undefined) continue;
    if (!known.has(name)) {
      throw new ConfigError(
        `unknown environment variable ${name}.${suggestion(name, serverEnvNames())} ` +
          'Unset it; kv-server --help lists the variables it reads',
      );
    }
    if (!name.startsWith(COMPACTION_ENV_PREFIX) || raw === '') continue;
    const key = COMPACTION_KEYS.find((k) => compactionEnv(k) === name)!;
    setCompaction(out, key, compactionFromText(key, raw, name));
  }
  return out;
}

function setCompaction(into: CompactionSettings, key: CompactionKey, value: number | boolean): void {
  (into as Record<string, number | boolean>)[key] = value;
}

/** Resolves flags, env, config file and defaults. Returns 'help' or 'version' for those flags. Throws ConfigError. */
export function parseConfig(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
): ServerConfig | 'help' | 'version' {
  const line = resolveCommandLine(argv, env);
  if (line.action === 'help' || line.action === 'version') return line.action;
  return line.config;
}

/**
 * The effective settings as --print-config shows them: every field, unset
 * ones as null, the store's compaction defaults filled in, the password
 * redacted. A valid config file.
 */
export function effectiveConfig(config: ServerConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const s of SETTINGS) out[s.key] = config[s.key] ?? null;
  if (config.password !== undefined) out.password = REDACTED;
  const { onStep: _onStep, ...compactionDefaults } = resolveCompaction();
  out.compaction = { ...compactionDefaults, ...config.compaction };
  return out;
}
