/**
 * RESP server commands: INFO COMMAND CONFIG BGREWRITEAOF DEBUG TIME, and the
 * replication/cluster commands answered as a standalone primary answers
 * them (ROLE, WAIT, CLUSTER, READONLY, READWRITE) until replication and
 * cluster mode land: those rows are where they plug in.
 *
 * BGREWRITEAOF starts a compaction (segkv's log rewrite) and answers at once,
 * as Redis does; its outcome shows in INFO `aof_last_bgrewrite_status`.
 * DEBUG has one subcommand, SLEEP: it delays this connection's reply (the
 * server keeps serving others, unlike Redis).
 */
import { globMatch } from '../../engine/glob.js';
import { command, intArg, type RespCommand, type RespSession, word, wrongArity } from '../command.js';
import { docsReply, infoReply } from '../docs.js';
import { err, OK, type Reply, type RespError, RespMap, Simple, Verbatim } from '../reply.js';
import { CLUSTER_COMMAND } from './cluster.js';

const SERVER = { group: 'server' } as const;

function unknownSubcommand(parent: string, sub: Buffer): RespError {
  return err(`unknown subcommand '${sub.toString('latin1').slice(0, 128)}'. Try ${parent} HELP.`);
}

/** The server commands; `table` gives COMMAND the whole command table. */
export function serverCommands(table: () => ReadonlyMap<string, RespCommand>): RespCommand[] {
  const lookup = (name: Buffer): RespCommand | undefined =>
    table().get(name.toString('latin1').toLowerCase());
  const commandSubs: RespCommand[] = [
    command(
      'command|count',
      2,
      'loading stale',
      [0, 0, 0],
      { ...SERVER, summary: 'Get total number of Redis commands', since: '2.8.13' },
      () => table().size,
    ),
    command(
      'command|info',
      -2,
      'loading stale',
      [0, 0, 0],
      {
        ...SERVER,
        summary: 'Get array of specific Redis command details, or all when no argument is given',
        since: '2.8.13',
        complexity: 'O(N)',
        synopsis: '[command-name ...]',
      },
      (_s, argv) => {
        if (argv.length === 2) return [...table().values()].map(infoReply);
        return argv.slice(2).map((n) => {
          const c = lookup(n);
          return c === undefined ? null : infoReply(c);
        });
      },
    ),
    command(
      'command|docs',
      -2,
      'loading stale',
      [0, 0, 0],
      {
        ...SERVER,
        summary: 'Get array of specific Redis command documentation',
        since: '7.0.0',
        complexity: 'O(N)',
        synopsis: '[command-name ...]',
      },
      (_s, argv) => {
        const chosen = argv.length === 2 ? [...table().values()] : argv.slice(2).map(lookup);
        const entries: [Reply, Reply][] = [];
        for (const c of chosen) if (c !== undefined) entries.push([c.name, docsReply(c)]);
        return new RespMap(entries);
      },
    ),
    command(
      'command|list',
      -2,
      'loading stale',
      [0, 0, 0],
      {
        ...SERVER,
        summary: 'Get an array of Redis command names',
        since: '7.0.0',
        complexity: 'O(N)',
        synopsis: '[FILTERBY MODULE module-name|ACLCAT category|PATTERN pattern]',
      },
      (_s, argv) => {
        const names = [...table().keys()];
        if (argv.length === 2) return names;
        if (argv.length === 5 && word(argv[2]) === 'FILTERBY' && word(argv[3]) === 'PATTERN') {
          const pattern = argv[4]!.toString('latin1');
          return names.filter((n) => globMatch(pattern, n, true));
        }
        throw err('syntax error');
      },
    ),
  ];
  const configSubs: RespCommand[] = [
    command(
      'config|get',
      -3,
      'admin noscript loading stale',
      [0, 0, 0],
      {
        ...SERVER,
        summary: 'Get the values of configuration parameters',
        since: '2.0.0',
        complexity: 'O(N)',
        synopsis: 'parameter ...',
      },
      (s, argv) => {
        const values = s.server.configValues();
        const entries: [Reply, Reply][] = [];
        const seen = new Set<string>();
        for (const p of argv.slice(2)) {
          const pattern = p.toString('latin1');
          for (const [name, value] of values) {
            if (!seen.has(name) && globMatch(pattern, name, true)) {
              seen.add(name);
              entries.push([name, value]);
            }
          }
        }
        return new RespMap(entries);
      },
    ),
    command(
      'config|set',
      -4,
      'admin noscript loading stale',
      [0, 0, 0],
      {
        ...SERVER,
        summary: 'Set configuration parameters to the given values',
        since: '2.0.0',
        synopsis: '(parameter value) ...',
      },
      (_s, argv) => {
        throw err(`Unknown option or number of arguments for CONFIG SET - '${argv[2]!.toString('latin1')}'`);
      },
    ),
    command(
      'config|resetstat',
      2,
      'admin noscript loading stale',
      [0, 0, 0],
      { ...SERVER, summary: 'Reset the stats returned by INFO', since: '2.0.0' },
      () => OK,
    ),
  ];
  const debugSubs: RespCommand[] = [
    command(
      'debug|sleep',
      3,
      'admin noscript loading stale',
      [0, 0, 0],
      {
        ...SERVER,
        summary: "Delay this connection's reply by the given seconds",
        since: '1.0.0',
        synopsis: 'seconds',
      },
      (_s, argv) => {
        const seconds = Number(argv[2]!.toString('latin1'));
        if (!Number.isFinite(seconds) || seconds <= 0) return OK;
        // setTimeout's largest delay (~24.8 days); Redis would block that long anyway.
        const ms = Math.min(seconds * 1000, 2 ** 31 - 1);
        return new Promise<Reply>((resolve) => setTimeout(() => resolve(OK), ms));
      },
    ),
  ];
  return [
    command(
      'info',
      -1,
      'loading stale sentinel',
      [0, 0, 0],
      {
        ...SERVER,
        summary: 'Get information and statistics about the server',
        since: '1.0.0',
        synopsis: '[section ...]',
        acl: 'slow dangerous',
      },
      (s, argv) => {
        const text = s.server.infoText(argv.slice(1).map((a) => a.toString('latin1').toLowerCase()));
        return s.proto === 3 ? new Verbatim(text) : text;
      },
    ),
    command(
      'command',
      -1,
      'loading stale',
      [0, 0, 0],
      {
        ...SERVER,
        summary: 'Get array of Redis command details',
        since: '2.8.13',
        complexity: 'O(N) where N is the total number of Redis commands',
        acl: 'slow connection',
      },
      () => [...table().values()].map(infoReply),
      commandSubs,
    ),
    command(
      'config',
      -2,
      '',
      [0, 0, 0],
      {
        ...SERVER,
        summary: 'A container for server configuration commands',
        since: '2.0.0',
        complexity: 'Depends on subcommand.',
      },
      () => OK,
      configSubs,
    ),
    command(
      'bgrewriteaof',
      1,
      'admin noscript no_async_loading',
      [0, 0, 0],
      {
        ...SERVER,
        summary: 'Asynchronously rewrite the append-only file (segkv: start a compaction)',
        since: '1.0.0',
        acl: 'admin slow dangerous',
      },
      (s) => {
        const store = s.store as { compact?: () => Promise<unknown> };
        if (typeof store.compact !== 'function') throw err('this store has no compactor');
        // Answered at once, as Redis does; the outcome shows in INFO (aof_last_bgrewrite_status).
        store.compact().catch(() => {});
        return new Simple('Background append only file rewriting started');
      },
    ),
    command(
      'debug',
      -2,
      'admin noscript loading stale',
      [0, 0, 0],
      {
        ...SERVER,
        summary: 'A container for debugging commands',
        since: '1.0.0',
        complexity: 'Depends on subcommand.',
      },
      () => OK,
      debugSubs,
    ),
    command(
      'time',
      1,
      'loading stale fast',
      [0, 0, 0],
      { ...SERVER, summary: 'Return the current server time', since: '2.6.0', acl: 'fast' },
      () => {
        const micros = BigInt(Date.now()) * 1000n + BigInt(Math.floor((performance.now() % 1) * 1000));
        return [(micros / 1_000_000n).toString(), (micros % 1_000_000n).toString()];
      },
    ),
    command(
      'role',
      1,
      'noscript loading stale fast',
      [0, 0, 0],
      {
        ...SERVER,
        summary: 'Return the role of the instance in the context of replication',
        since: '2.8.12',
        acl: 'admin fast dangerous',
      },
      // Redis's shapes: ["master", offset, [[ip, port, acked offset], ...]] or
      // ["slave", host, port, state, offset].
      (s) => {
        const info = s.server.replication.info();
        if (info.role === 'primary')
          return [
            Buffer.from('master'),
            info.offset,
            info.replicas.map((r) => {
              const at = r.address.lastIndexOf(':');
              return [
                Buffer.from(r.address.slice(0, at)),
                Buffer.from(r.address.slice(at + 1)),
                Buffer.from(String(r.ackedOffset)),
              ];
            }),
          ];
        const primary = info.primary ?? ':0';
        const at = primary.lastIndexOf(':');
        const state = info.link === 'up' ? 'connected' : info.link === 'sync' ? 'sync' : 'connect';
        return [
          Buffer.from('slave'),
          Buffer.from(primary.slice(0, at)),
          Number(primary.slice(at + 1)),
          Buffer.from(state),
          info.offset,
        ];
      },
    ),
    command(
      'wait',
      3,
      'noscript',
      [0, 0, 0],
      {
        group: 'generic',
        summary:
          'Wait for the synchronous replication of all the write commands sent in the context of the current connection',
        since: '3.0.0',
        synopsis: 'numreplicas timeout',
        acl: 'slow connection',
      },
      // How many replicas hold every write this connection made so far (Redis semantics).
      (s, argv) => {
        const n = intArg(argv[1]!);
        const timeout = intArg(argv[2]!);
        if (timeout < 0n) throw err('timeout is negative');
        const ms = timeout > 2n ** 31n - 1n ? 2 ** 31 - 1 : Number(timeout);
        const count = n > 2n ** 31n ? 2 ** 31 : Number(n);
        return s.server.replication.waitForAcks(count, ms, s.lastWriteOffset);
      },
    ),
    command(
      'replicaof',
      3,
      'admin noscript stale no_async_loading',
      [0, 0, 0],
      {
        ...SERVER,
        summary: 'Configure a server as replica of another, or promote it to a master',
        since: '5.0.0',
        synopsis: 'host port',
        acl: 'admin slow dangerous',
      },
      async (s, argv) => {
        const repl = s.server.replication;
        if (repl.clusterManaged) throw err('REPLICAOF not allowed in cluster mode.');
        const host = argv[1]!.toString();
        const port = argv[2]!.toString();
        if (host.toLowerCase() === 'no' && port.toLowerCase() === 'one') {
          await repl.promote();
          return OK;
        }
        const n = intArg(argv[2]!);
        if (n < 1n || n > 65535n) throw err('Invalid master port');
        await repl.replicaOf({ host, port: Number(n) });
        return OK;
      },
    ),
    CLUSTER_COMMAND,
    command(
      'readonly',
      1,
      'loading stale fast',
      [0, 0, 0],
      {
        group: 'cluster',
        summary: 'Enables read queries for a connection to a cluster replica node',
        since: '3.0.0',
        acl: 'fast connection',
      },
      () => {
        throw err('This instance has cluster support disabled');
      },
    ),
    command(
      'readwrite',
      1,
      'loading stale fast',
      [0, 0, 0],
      {
        group: 'cluster',
        summary: 'Disables read queries for a connection to a cluster replica node',
        since: '3.0.0',
        acl: 'fast connection',
      },
      () => {
        throw err('This instance has cluster support disabled');
      },
    ),
  ];
}

/** Dispatches a container command (CLIENT, CONFIG, COMMAND, DEBUG) to its subcommand. */
export function subcommandOf(parent: RespCommand, argv: Buffer[]): RespCommand {
  const sub = argv[1]!;
  const name = `${parent.name}|${sub.toString('latin1').toLowerCase()}`;
  const found = parent.subcommands?.find((c) => c.name === name);
  if (found === undefined) throw unknownSubcommand(parent.name.toUpperCase(), sub);
  if (found.arity > 0 ? argv.length !== found.arity : argv.length < -found.arity)
    throw wrongArity(found.name);
  return found;
}

export type { RespSession };
