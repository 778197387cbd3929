/**
 * kv-cli's command line: redis-cli's flags where they exist (-h -p -a --tls
 * --cacert --raw --pipe --latency -x -i), resolved into one options object.
 *
 * Options end at the first word that is not an option (the command), as in
 * redis-cli, so `kv-cli set k -1` sends -1 as the value.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { DEFAULT_HOST, DEFAULT_PORT } from '../../src/protocol/limits.js';
import { integerOption, parseCommandLine, ToolError, UsageError } from '../lib/cli.js';
import type { OutputMode } from './reply.js';

/** Commands kept in flight by --pipe unless --pipe-window says otherwise. */
export const DEFAULT_PIPE_WINDOW = 1000;
/** Time between two PINGs of --latency, ms (redis-cli's default too). */
export const DEFAULT_LATENCY_INTERVAL_MS = 10;
/** Env variable read for the password when -a is not given (like REDISCLI_AUTH). */
export const PASSWORD_ENV = 'SEGKV_CLI_AUTH';

export const HELP = `Usage: kv-cli [OPTIONS] [cmd [arg [arg ...]]]

Talks to a segkv server. Without a command: an interactive prompt (history in
~/.segkv_history or $SEGKV_HISTORY, TAB completion, argument hints, "help").
With a command: runs it, prints the reply, exits 0 (non-zero on an error).

Connection:
  -h, --host HOST        Server host (default ${DEFAULT_HOST}).
  -p, --port PORT        Server port (default ${DEFAULT_PORT}).
  -a, --pass PASSWORD    Password for AUTH; safer in the env variable ${PASSWORD_ENV}.
      --no-auth-warning  Do not warn about a password on the command line.
      --tls              Connect with TLS.
      --cacert FILE      CA certificate(s) to verify the server with (PEM).
      --cert FILE        Client certificate (PEM); --key FILE its private key.
      --sni NAME         Server name for TLS (default the host).
      --insecure         Do not verify the server's certificate.
  -c                     Cluster mode: follow MOVED redirects to the node that owns
                         the key's slot (and stay connected there), as redis-cli -c.

Output (the same in a terminal and in a pipe):
      --raw              Bare values, one per line, nil as an empty line: for scripts.
      --no-raw           redis-cli's formatted output (the default).
      --json             One JSON value per reply.

Modes:
  -x                     Read the command's last argument from stdin.
  -r N                   Run the command N times (-i SECONDS apart).
      --scan             List every key, one per line (all SCAN pages).
      --pattern P        With --scan: only keys matching the glob P ('user:*', '*:1', Redis's rules).
      --pipe             Bulk load: read commands from stdin (one per line, quoted
                         as at the prompt, or RESP), send them pipelined, print a summary.
      --pipe-window N    Commands in flight during --pipe (default ${DEFAULT_PIPE_WINDOW}).
      --feed             Print the change feed (FEED), one record per line, until Ctrl-C.
      --from N           With --feed: start at log offset N (default 0: a snapshot, then changes).
      --latency          Sample PING round trips; min/avg/max in ms until Ctrl-C.
      --latency-samples N  Stop --latency after N samples.
  -i SECONDS             Wait between -r repeats (default 0) or --latency samples
                         (default ${DEFAULT_LATENCY_INTERVAL_MS / 1000}).
  -v, --version          Print the version.
      --help             Show this help.

Examples:
  kv-cli set greeting "hello world"        kv-cli --raw get greeting
  kv-cli -p 7380 -a secret dbsize          kv-cli --pipe < commands.txt
  kv-cli compact                           kv-cli --latency --latency-samples 100

Exit status: 0 ok, 1 error reply or connection failure, 2 usage error.
`;

const FLAGS = {
  host: { type: 'string', short: 'h' },
  port: { type: 'string', short: 'p' },
  pass: { type: 'string', short: 'a' },
  'no-auth-warning': { type: 'boolean' },
  tls: { type: 'boolean' },
  cacert: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  sni: { type: 'string' },
  insecure: { type: 'boolean' },
  c: { type: 'boolean', short: 'c' },
  raw: { type: 'boolean' },
  'no-raw': { type: 'boolean' },
  json: { type: 'boolean' },
  x: { type: 'boolean', short: 'x' },
  r: { type: 'string', short: 'r' },
  scan: { type: 'boolean' },
  pattern: { type: 'string' },
  pipe: { type: 'boolean' },
  'pipe-window': { type: 'string' },
  latency: { type: 'boolean' },
  feed: { type: 'boolean' },
  from: { type: 'string' },
  'latency-samples': { type: 'string' },
  i: { type: 'string', short: 'i' },
  version: { type: 'boolean', short: 'v' },
  help: { type: 'boolean' },
} as const;

export type Mode = 'repl' | 'command' | 'pipe' | 'latency' | 'scan' | 'feed';

export interface CliOptions {
  host: string;
  port: number;
  password: string | undefined;
  /** Where the password came from: a warning is printed for 'flag'. */
  passwordFrom: 'flag' | 'env' | undefined;
  authWarning: boolean;
  tls: ConnectionOptions | undefined;
  /** -c: follow MOVED redirects (one-shot and prompt modes). */
  cluster: boolean;
  output: OutputMode;
  mode: Mode;
  /** The command and its arguments (mode 'command'). */
  command: string[];
  /** -x: the last argument comes from stdin. */
  lastArgFromStdin: boolean;
  /** -r: times to run the command. */
  repeat: number;
  /** --scan --pattern: only keys matching this glob pattern (Redis's rules, matched by the server). */
  pattern: string | undefined;
  pipeWindow: number;
  /** --latency-samples; undefined = until interrupted. */
  latencySamples: number | undefined;
  /** --feed --from: the offset the feed starts at. */
  feedFrom: number;
  intervalMs: number;
}

/** Index of the first argument that is not an option or an option's value. */
function commandStart(argv: string[]): number {
  const takesValue = new Set<string>();
  for (const [name, spec] of Object.entries(FLAGS)) {
    if (spec.type === 'string') {
      takesValue.add(`--${name}`);
      if ('short' in spec) takesValue.add(`-${spec.short}`);
    }
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return i;
    if (!a.startsWith('-') || a === '-') return i;
    if (takesValue.has(a)) i++;
  }
  return argv.length;
}

function readPem(flag: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ToolError(`cannot read --${flag} ${file}: ${(err as Error).message}`);
  }
}

/** Parses argv; 'help' and 'version' ask for those texts. */
export function parseOptions(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): CliOptions | 'help' | 'version' {
  const start = commandStart(argv);
  const { values } = parseCommandLine(argv.slice(0, start), FLAGS);
  const command = argv.slice(argv[start] === '--' ? start + 1 : start);
  if (values.help) return 'help';
  if (values.version) return 'version';

  const port = integerOption('port', values.port as string | undefined, DEFAULT_PORT);
  if (port < 1 || port > 65535) throw new UsageError(`--port must be from 1 to 65535, got ${port}`);
  if (values.raw && values.json) throw new UsageError('--raw and --json exclude each other');

  const modes = [
    values.pipe && '--pipe',
    values.latency && '--latency',
    values.scan && '--scan',
    values.feed && '--feed',
  ].filter(Boolean);
  if (modes.length > 1) throw new UsageError(`${modes.join(' and ')} exclude each other`);
  if (modes.length === 1 && command.length > 0) {
    throw new UsageError(`${modes[0]} takes no command (got ${command.join(' ')})`);
  }
  const mode: Mode = values.pipe
    ? 'pipe'
    : values.latency
      ? 'latency'
      : values.scan
        ? 'scan'
        : values.feed
          ? 'feed'
          : command.length > 0
            ? 'command'
            : 'repl';
  if (values.x && mode !== 'command') throw new UsageError('-x needs a command');
  if (values.r !== undefined && mode !== 'command') throw new UsageError('-r needs a command');
  if (values.c && mode !== 'command' && mode !== 'repl')
    throw new UsageError(`-c goes with a command or the prompt, not ${modes[0]}`);
  if (values.pattern !== undefined && mode !== 'scan') throw new UsageError('--pattern goes with --scan');
  if (values.from !== undefined && mode !== 'feed') throw new UsageError('--from goes with --feed');
  const feedFrom = integerOption('from', values.from as string | undefined, 0);
  if (feedFrom < 0) throw new UsageError('--from must be an offset ≥ 0');
  const repeat = integerOption('r', values.r as string | undefined, 1);
  if (repeat < 1) throw new UsageError('-r must be at least 1');

  let tls: ConnectionOptions | undefined;
  const tlsFiles = values.cacert ?? values.cert ?? values.key ?? values.sni ?? values.insecure;
  if (values.tls || tlsFiles !== undefined) {
    if (!values.tls) throw new UsageError('--cacert, --cert, --key, --sni and --insecure need --tls');
    if ((values.cert === undefined) !== (values.key === undefined)) {
      throw new UsageError('--cert and --key go together');
    }
    tls = {};
    if (typeof values.cacert === 'string') tls.ca = readPem('cacert', values.cacert);
    if (typeof values.cert === 'string') tls.cert = readPem('cert', values.cert);
    if (typeof values.key === 'string') tls.key = readPem('key', values.key);
    if (typeof values.sni === 'string') tls.servername = values.sni;
    if (values.insecure) tls.rejectUnauthorized = false;
  }

  let intervalMs = mode === 'latency' ? DEFAULT_LATENCY_INTERVAL_MS : 0;
  if (typeof values.i === 'string') {
    const s = Number(values.i);
    if (!Number.isFinite(s) || s < 0 || values.i.trim() === '') {
      throw new UsageError(`-i takes seconds (e.g. 0.1), got ${JSON.stringify(values.i)}`);
    }
    intervalMs = s * 1000;
  }
  const pipeWindow = integerOption(
    'pipe-window',
    values['pipe-window'] as string | undefined,
    DEFAULT_PIPE_WINDOW,
  );
  if (pipeWindow < 1) throw new UsageError('--pipe-window must be at least 1');
  const samples = values['latency-samples'] as string | undefined;
  const latencySamples = samples === undefined ? undefined : integerOption('latency-samples', samples, 0);
  if (latencySamples === 0) throw new UsageError('--latency-samples must be at least 1');

  const flagPassword = values.pass as string | undefined;
  const envPassword = env[PASSWORD_ENV] === '' ? undefined : env[PASSWORD_ENV];
  return {
    host: (values.host as string | undefined) ?? DEFAULT_HOST,
    port,
    password: flagPassword ?? envPassword,
    passwordFrom: flagPassword !== undefined ? 'flag' : envPassword !== undefined ? 'env' : undefined,
    authWarning: values['no-auth-warning'] !== true,
    tls,
    cluster: values.c === true,
    output: values.json ? 'json' : values.raw ? 'raw' : 'human',
    mode,
    command,
    lastArgFromStdin: values.x === true,
    repeat,
    pattern: values.pattern as string | undefined,
    pipeWindow,
    latencySamples,
    feedFrom,
    intervalMs,
  };
}
