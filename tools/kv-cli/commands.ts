/**
 * kv-cli's command table: how each command is typed (redis-cli style, e.g.
 * `SET key value [EX seconds|PX milliseconds] [NX|XX]`), what help and the
 * hints say about it, and how it runs through the client SDK and becomes a
 * Reply. Names match case-insensitively.
 *
 * The SDK has one method per protocol command, so a command not in this
 * table cannot be sent: it gets UNKNOWN_COMMAND locally, as the server would
 * answer. Session commands (AUTH, QUIT, HELP, CLEAR) have no `run`: the REPL
 * or the one-shot runner handles them.
 */
import type { KvClient } from '../../src/client/index.js';
import type { ScanOptions, ScanPage } from '../../src/engine/store.js';
import { KvError } from '../../src/errors.js';
import { bulk, integer, mapOf, NIL, OK, type Reply } from './reply.js';

export type CommandGroup = 'keys' | 'server' | 'connection' | 'cli';

/** What a command may use while it runs. */
export interface CommandContext {
  readonly client: KvClient<Buffer>;
  /** Called by COMPACT with its pending reply: shows progress until it settles. */
  readonly watchCompaction?: (done: Promise<unknown>) => Promise<void>;
}

export interface CliCommand {
  /** Upper case. */
  readonly name: string;
  /** Argument synopsis (help, hints, WRONG_ARGS messages). */
  readonly params: string;
  readonly summary: string;
  readonly group: CommandGroup;
  readonly minArgs: number;
  readonly maxArgs: number;
  readonly run?: (ctx: CommandContext, args: Buffer[]) => Promise<Reply>;
}

const MANY = Number.POSITIVE_INFINITY;

function usage(c: CliCommand): string {
  return `${c.name} ${c.params}`.trimEnd();
}

function syntaxError(name: string, what: string): KvError {
  const c = COMMANDS.get(name);
  return new KvError('WRONG_ARGS', `${what}; usage: ${c ? usage(c) : name}`);
}

/** A decimal integer argument (redis-cli users type numbers as words). */
export function integerArg(b: Buffer, name: string, what: string): number {
  const text = b.toString('utf8');
  const n = Number(text);
  if (!/^-?\d+$/.test(text) || !Number.isSafeInteger(n)) {
    throw new KvError('WRONG_ARGS', `${name}: ${what} must be an integer, got ${JSON.stringify(text)}`);
  }
  return n;
}

function upper(b: Buffer | undefined): string {
  return b === undefined ? '' : b.toString('utf8').toUpperCase();
}

async function setCommand(ctx: CommandContext, args: Buffer[]): Promise<Reply> {
  const [key, value, ...rest] = args as [Buffer, Buffer, ...Buffer[]];
  let ttlMs: number | undefined;
  let ifAbsent = false;
  let ifPresent = false;
  for (let i = 0; i < rest.length; i++) {
    const word = upper(rest[i]);
    if ((word === 'EX' || word === 'PX') && ttlMs === undefined && i + 1 < rest.length) {
      const n = integerArg(rest[++i]!, 'SET', word === 'EX' ? 'EX seconds' : 'PX milliseconds');
      // As the server's SET ttl and Redis: a time that is not positive is an invalid argument.
      if (n <= 0)
        throw new KvError('INVALID_ARGUMENT', `SET: invalid expire time ${n}; ${word} must be positive`);
      ttlMs = word === 'EX' ? n * 1000 : n;
    } else if (word === 'NX' && !ifPresent) ifAbsent = true;
    else if (word === 'XX' && !ifAbsent) ifPresent = true;
    else throw syntaxError('SET', `SET: syntax error at ${JSON.stringify(rest[i]!.toString('utf8'))}`);
  }
  const written = await ctx.client.set(key, value, {
    ...(ttlMs !== undefined && { ttlMs }),
    ...(ifAbsent && { ifAbsent }),
    ...(ifPresent && { ifPresent }),
  });
  // Like Redis: a SET that NX/XX stopped answers nil.
  return written ? OK : NIL;
}

/** Keys per SCAN page behind KEYS. */
const KEYS_PAGE = 1000;

async function scanCommand(ctx: CommandContext, args: Buffer[]): Promise<Reply> {
  const o: ScanOptions = {};
  let i = 0;
  const keywords = new Set(['MATCH', 'PREFIX', 'START', 'END', 'COUNT']);
  if (args.length > 0 && !keywords.has(upper(args[0]))) {
    const cursor = args[0]!.toString('utf8');
    if (cursor !== '0' && cursor !== '') o.cursor = cursor;
    i = 1;
  }
  for (; i < args.length; i += 2) {
    const word = upper(args[i]);
    const arg = args[i + 1];
    if (!keywords.has(word) || arg === undefined) {
      throw syntaxError('SCAN', `SCAN: syntax error at ${JSON.stringify(args[i]!.toString('utf8'))}`);
    }
    // Prefixes and bounds go as bytes: a key typed with \x escapes is matched exactly.
    // MATCH is a glob with Redis's rules, matched by the server (as bytes).
    if (word === 'MATCH') o.match = arg;
    else if (word === 'PREFIX') o.prefix = arg;
    else if (word === 'START') o.start = arg;
    else if (word === 'END') o.end = arg;
    else o.count = integerArg(arg, 'SCAN', 'COUNT');
  }
  // Raw: keys come back as their exact bytes, shown with escapes like any bulk reply.
  const page = await ctx.client.scan({ ...o, raw: true });
  return {
    type: 'array',
    items: [bulk(page.cursor ?? '0'), { type: 'array', items: page.keys.map((k) => bulk(k)) }],
    json: { cursor: page.cursor, keys: page.keys },
  };
}

/** KEYS: every page of a glob scan, in one reply (as Redis's KEYS, slow on a large store). */
async function keysCommand(ctx: CommandContext, [pattern]: Buffer[]): Promise<Reply> {
  const all = pattern!.length === 1 && pattern![0] === 0x2a;
  const keys: Reply[] = [];
  let cursor: string | null = null;
  do {
    const page: ScanPage<Buffer> = await ctx.client.scan({
      ...(!all && { match: pattern! }),
      ...(cursor !== null && { cursor }),
      count: KEYS_PAGE,
      raw: true,
    });
    for (const k of page.keys) keys.push(bulk(k));
    cursor = page.cursor;
  } while (cursor !== null);
  return { type: 'array', items: keys };
}

async function compactCommand(ctx: CommandContext): Promise<Reply> {
  const done = ctx.client.compact();
  if (ctx.watchCompaction) await ctx.watchCompaction(done.catch(() => undefined));
  const result = await done;
  return typeof result === 'object' && result !== null ? mapOf(result as Record<string, unknown>) : OK;
}

function incrBy(sign: 1 | -1, fixed?: number) {
  return async (ctx: CommandContext, args: Buffer[]): Promise<Reply> => {
    const delta = fixed ?? integerArg(args[1]!, 'INCR', 'the increment');
    return integer(await ctx.client.incr(args[0]!, sign * delta));
  };
}

const TABLE: CliCommand[] = [
  {
    name: 'GET',
    params: 'key',
    summary: 'Gets the value of a key, or nil.',
    group: 'keys',
    minArgs: 1,
    maxArgs: 1,
    run: async (ctx, [k]) => {
      const v = await ctx.client.get(k!);
      return v === undefined ? NIL : bulk(v);
    },
  },
  {
    name: 'SET',
    params: 'key value [EX seconds|PX milliseconds] [NX|XX]',
    summary: 'Sets a key; EX/PX: expire after a time; NX: only if absent; XX: only if present (else nil).',
    group: 'keys',
    minArgs: 2,
    maxArgs: 5,
    run: setCommand,
  },
  {
    name: 'DEL',
    params: 'key [key ...]',
    summary: 'Deletes keys (atomically); replies how many existed.',
    group: 'keys',
    minArgs: 1,
    maxArgs: MANY,
    run: async (ctx, keys) => integer(await ctx.client.del(keys)),
  },
  {
    name: 'MGET',
    params: 'key [key ...]',
    summary: 'Gets the values of several keys (nil for a missing one).',
    group: 'keys',
    minArgs: 1,
    maxArgs: MANY,
    run: async (ctx, keys) => ({
      type: 'array',
      items: (await ctx.client.mget(keys)).map((v) => (v === undefined ? NIL : bulk(v))),
    }),
  },
  {
    name: 'MSET',
    params: 'key value [key value ...]',
    summary: 'Sets several keys atomically: all or none survive a crash.',
    group: 'keys',
    minArgs: 2,
    maxArgs: MANY,
    run: async (ctx, args) => {
      if (args.length % 2 !== 0) throw syntaxError('MSET', 'MSET: keys and values must pair up');
      const pairs: [Buffer, Buffer][] = [];
      for (let i = 0; i < args.length; i += 2) pairs.push([args[i]!, args[i + 1]!]);
      await ctx.client.mset(pairs);
      return OK;
    },
  },
  {
    name: 'EXISTS',
    params: 'key [key ...]',
    summary: 'Counts how many of the keys exist (a key named twice counts twice).',
    group: 'keys',
    minArgs: 1,
    maxArgs: MANY,
    run: async (ctx, keys) => integer(await ctx.client.exists(keys)),
  },
  {
    name: 'INCR',
    params: 'key [delta]',
    summary: 'Adds delta (default 1) to the decimal integer at key (absent = 0); replies the new value.',
    group: 'keys',
    minArgs: 1,
    maxArgs: 2,
    run: (ctx, args) => incrBy(1, args.length === 1 ? 1 : undefined)(ctx, args),
  },
  {
    name: 'INCRBY',
    params: 'key delta',
    summary: 'INCR key delta (kept for redis-cli habits).',
    group: 'keys',
    minArgs: 2,
    maxArgs: 2,
    run: incrBy(1),
  },
  {
    name: 'DECR',
    params: 'key',
    summary: 'INCR key -1.',
    group: 'keys',
    minArgs: 1,
    maxArgs: 1,
    run: incrBy(-1, 1),
  },
  {
    name: 'DECRBY',
    params: 'key delta',
    summary: 'INCR key -delta.',
    group: 'keys',
    minArgs: 2,
    maxArgs: 2,
    run: incrBy(-1),
  },
  {
    name: 'TTL',
    params: 'key',
    summary: 'Time to live in seconds (rounded); -1 without expiry, -2 if the key does not exist.',
    group: 'keys',
    minArgs: 1,
    maxArgs: 1,
    run: async (ctx, [k]) => integer(await ctx.client.ttl(k!)),
  },
  {
    name: 'PTTL',
    params: 'key',
    summary: 'Time to live in milliseconds; -1 without expiry, -2 if the key does not exist.',
    group: 'keys',
    minArgs: 1,
    maxArgs: 1,
    run: async (ctx, [k]) => integer(await ctx.client.pttl(k!)),
  },
  {
    name: 'EXPIRE',
    params: 'key seconds',
    summary: 'Makes a key expire after this many seconds (0 or less deletes it); 1 if it exists, else 0.',
    group: 'keys',
    minArgs: 2,
    maxArgs: 2,
    run: async (ctx, [k, t]) =>
      integer((await ctx.client.expire(k!, integerArg(t!, 'EXPIRE', 'seconds'))) ? 1 : 0),
  },
  {
    name: 'PEXPIRE',
    params: 'key milliseconds',
    summary:
      'Makes a key expire after this many milliseconds (0 or less deletes it); 1 if it exists, else 0.',
    group: 'keys',
    minArgs: 2,
    maxArgs: 2,
    run: async (ctx, [k, t]) =>
      integer((await ctx.client.pexpire(k!, integerArg(t!, 'PEXPIRE', 'milliseconds'))) ? 1 : 0),
  },
  {
    name: 'PERSIST',
    params: 'key',
    summary: "Removes a key's expiry; 1 if it had one, else 0.",
    group: 'keys',
    minArgs: 1,
    maxArgs: 1,
    run: async (ctx, [k]) => integer((await ctx.client.persist(k!)) ? 1 : 0),
  },
  {
    name: 'SCAN',
    params: '[cursor] [MATCH pattern] [PREFIX prefix] [START key] [END key] [COUNT count]',
    summary:
      'One page of keys in byte order and the cursor of the next page ("0" when done, or to start); MATCH: a glob (* ? [a-z]), COUNT then counts keys examined.',
    group: 'keys',
    minArgs: 0,
    maxArgs: 11,
    run: scanCommand,
  },
  {
    name: 'KEYS',
    params: 'pattern',
    summary:
      "All keys matching a glob pattern ('*' for all, 'user:*', '*:1') in one reply: slow on a large store.",
    group: 'keys',
    minArgs: 1,
    maxArgs: 1,
    run: keysCommand,
  },
  {
    name: 'DBSIZE',
    params: '',
    summary: 'Number of keys.',
    group: 'server',
    minArgs: 0,
    maxArgs: 0,
    run: async (ctx) => integer(await ctx.client.dbsize()),
  },
  {
    name: 'INFO',
    params: '[server|keyspace|storage|compaction|clients|stats|replication]',
    summary: 'Server statistics: every section, or the one named.',
    group: 'server',
    minArgs: 0,
    maxArgs: 1,
    run: async (ctx, [section]) => {
      const name = section?.toString('utf8').toLowerCase() as Parameters<KvClient['info']>[0];
      return { type: 'info', sections: await ctx.client.info(name) };
    },
  },
  {
    name: 'COMPACT',
    params: '',
    summary: 'Compacts the whole log now, with a progress bar; replies what it reclaimed.',
    group: 'server',
    minArgs: 0,
    maxArgs: 0,
    run: compactCommand,
  },
  {
    name: 'WAIT',
    params: 'numreplicas timeout-ms',
    summary:
      'Waits until that many replicas hold every write of this session (or the timeout); replies how many do.',
    group: 'server',
    minArgs: 2,
    maxArgs: 2,
    run: async (ctx, [n, ms]) =>
      integer(
        await ctx.client.wait(integerArg(n!, 'WAIT', 'numreplicas'), integerArg(ms!, 'WAIT', 'timeout-ms')),
      ),
  },
  {
    name: 'ROLE',
    params: '',
    summary: "Replication role (primary or replica), the log's id, epochs, end and tombstone horizon.",
    group: 'server',
    minArgs: 0,
    maxArgs: 0,
    run: async (ctx) => mapOf({ ...(await ctx.client.role()) }),
  },
  {
    name: 'REPLICAOF',
    params: 'host port | NO ONE',
    summary: 'Follow a primary as a read-only replica; NO ONE promotes this server to a primary.',
    group: 'server',
    minArgs: 2,
    maxArgs: 2,
    run: async (ctx, [host, port]) => {
      if (upper(host) === 'NO' && upper(port) === 'ONE') await ctx.client.replicaOf(null);
      else {
        const p = integerArg(port!, 'REPLICAOF', 'port');
        await ctx.client.replicaOf({ host: host!.toString('utf8'), port: p });
      }
      return OK;
    },
  },
  {
    name: 'PING',
    params: '[message]',
    summary: 'Replies PONG, or the message.',
    group: 'connection',
    minArgs: 0,
    maxArgs: 1,
    run: async (ctx, [m]) => {
      if (m === undefined) return { type: 'status', text: await ctx.client.ping() };
      return bulk(await ctx.client.ping(m.toString('utf8')));
    },
  },
  {
    name: 'HELLO',
    params: '',
    summary: 'Server name, version, protocol version, limits and commands.',
    group: 'connection',
    minArgs: 0,
    maxArgs: 0,
    run: async (ctx) => mapOf({ ...(await ctx.client.hello()) }),
  },
  {
    name: 'AUTH',
    params: 'password',
    summary: 'Authenticates this session (reconnects with the password; never saved in history).',
    group: 'connection',
    minArgs: 1,
    maxArgs: 1,
  },
  {
    name: 'QUIT',
    params: '',
    summary: 'Leaves kv-cli (also EXIT, Ctrl-D).',
    group: 'cli',
    minArgs: 0,
    maxArgs: 0,
  },
  {
    name: 'EXIT',
    params: '',
    summary: 'Leaves kv-cli.',
    group: 'cli',
    minArgs: 0,
    maxArgs: 0,
  },
  {
    name: 'HELP',
    params: '[command|@group]',
    summary: 'Lists the commands, or describes one (or a group: @keys @server @connection @cli).',
    group: 'cli',
    minArgs: 0,
    maxArgs: 1,
  },
  {
    name: 'CLEAR',
    params: '',
    summary: 'Clears the screen.',
    group: 'cli',
    minArgs: 0,
    maxArgs: 0,
  },
];

/** Upper-case name → command, in table order. */
export const COMMANDS: ReadonlyMap<string, CliCommand> = new Map(TABLE.map((c) => [c.name, c]));

export const GROUPS: readonly CommandGroup[] = ['keys', 'server', 'connection', 'cli'];

export function findCommand(name: string): CliCommand | undefined {
  return COMMANDS.get(name.toUpperCase());
}

export function commandUsage(c: CliCommand): string {
  return usage(c);
}

/** The command named by `args[0]`, with its arity checked; throws UNKNOWN_COMMAND or WRONG_ARGS. */
export function resolveCommand(args: Buffer[]): CliCommand {
  const name = args[0]!.toString('utf8');
  const c = findCommand(name);
  if (!c) {
    throw new KvError('UNKNOWN_COMMAND', `unknown command '${name}'; type help for the list`);
  }
  const argc = args.length - 1;
  if (argc < c.minArgs || argc > c.maxArgs) {
    throw new KvError('WRONG_ARGS', `wrong number of arguments for ${c.name}; usage: ${usage(c)}`);
  }
  return c;
}

/** Runs a server command (args[0] is its name). Errors come back as error replies. */
export async function runCommand(ctx: CommandContext, args: Buffer[]): Promise<Reply> {
  try {
    const c = resolveCommand(args);
    if (!c.run) throw new KvError('NOT_SUPPORTED', `${c.name} only works in the interactive kv-cli`);
    return await c.run(ctx, args.slice(1));
  } catch (err) {
    return errorReply(err);
  }
}

export function errorReply(err: unknown): Reply {
  if (err instanceof KvError) return { type: 'error', code: err.code, message: err.message };
  return { type: 'error', code: 'ERR', message: err instanceof Error ? err.message : String(err) };
}
