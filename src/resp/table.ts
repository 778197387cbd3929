/**
 * The RESP command table and its dispatcher, in Redis 7's processCommand
 * order: unknown command (or subcommand) → arity → NOAUTH → READONLY or
 * LOADING (the replication hooks) → MOVED (the cluster hook) → the handler. Command names
 * match case-insensitively.
 *
 * Adding a command: a row in one of commands/*.ts (name, arity, flags, key
 * positions, docs, handler); COMMAND, COMMAND DOCS and PROTOCOL.md's RESP
 * list come from here (test/resp checks the doc).
 */
import { type AckedWrite, ackedPromise, isAckedWrite, withReplicas } from '../server/acked-write.js';
import type { RespCommand, RespSession } from './command.js';
import { wrongArity } from './command.js';
import { CONNECTION_COMMANDS } from './commands/connection.js';
import { KEYSPACE_COMMANDS } from './commands/keyspace.js';
import { serverCommands, subcommandOf } from './commands/server.js';
import { STRING_COMMANDS } from './commands/strings.js';
import { err, OK, type Reply, RespError } from './reply.js';

const table = new Map<string, RespCommand>();
for (const c of [
  ...CONNECTION_COMMANDS,
  ...STRING_COMMANDS,
  ...KEYSPACE_COMMANDS,
  ...serverCommands(() => table),
]) {
  table.set(c.name, c);
}

/** Reads of the whole keyspace (no key arguments): refused with LOADING like the keyed ones. */
const KEYSPACE_READS: ReadonlySet<string> = new Set(['keys', 'scan', 'dbsize']);
/** A replica's reads during a full resync (Redis's words while it loads an RDB). */
const LOADING = 'LOADING segkv is loading the dataset from its primary';

/** Every RESP command by lower-case name. */
export const RESP_COMMANDS: ReadonlyMap<string, RespCommand> = table;

/** Redis 7's unknown-command error: the name and the first ~128 bytes of arguments, quoted. */
export function unknownCommand(argv: readonly Buffer[]): RespError {
  let args = '';
  for (let i = 1; i < argv.length && args.length < 128; i++) {
    args += `'${argv[i]!.toString('utf8').slice(0, 128 - args.length)}' `;
  }
  return err(
    `unknown command '${argv[0]!.toString('utf8').slice(0, 128)}', with args beginning with: ${args}`,
  );
}

export const NOAUTH = 'NOAUTH Authentication required.';

/** The command `argv` names (a subcommand for containers), checked for arity; throws Redis's error. */
export function resolve(argv: Buffer[]): RespCommand {
  const name = argv[0]!;
  let c = table.get(name.length <= 16 ? name.toString('latin1').toLowerCase() : '');
  if (c === undefined) throw unknownCommand(argv);
  if (c.arity > 0 ? argv.length !== c.arity : argv.length < -c.arity) throw wrongArity(c.name);
  if (c.subcommands !== undefined && argv.length >= 2) c = subcommandOf(c, argv);
  return c;
}

/**
 * Runs one request: resolves the command, checks access, runs its handler.
 * Returns the reply or a promise of it; throws RespError (or a store error,
 * which the connection translates). `s.lastCommand` is set for CLIENT LIST.
 *
 * A write's handler returns its store's tick ack and reply (acked-write.ts).
 * With `ack` (the connection's repliesOnTickAck: untimed, outside a cluster)
 * that is returned as it is (under --min-replicas-ack with its tick's ack
 * through the replicas: withReplicas), for the connection to wait on the ack
 * itself: the reply then leaves in the same event-loop turn as the flush,
 * as the native protocol's does. Without, it becomes a promise, chained
 * through --min-replicas-ack and cluster fencing.
 */
export function execute(s: RespSession, argv: Buffer[], ack = false): Reply | Promise<Reply> | AckedWrite {
  const c = resolve(argv);
  s.lastCommand = c.name;
  if (!s.authenticated && !c.noAuth) throw new RespError(NOAUTH);
  if (c.write) {
    const refusal = s.server.writeRefusal?.();
    if (refusal !== undefined) throw new RespError(refusal);
  } else if (
    s.server.replication.resync.pending &&
    (c.keys[0] > 0 || KEYSPACE_READS.has(c.name)) &&
    s.server.replication.refuseRead() !== undefined
  ) {
    throw new RespError(LOADING);
  }
  const server = s.server;
  if (server.redirect !== undefined && (c.write || c.keys[0] > 0)) {
    const refused = server.redirect(commandKeys(c, argv), c.write);
    if (refused !== undefined) throw new RespError(refused);
  }
  const result = c.run(s, argv);
  if (!c.write) return result;
  // WAIT waits for the replicas to hold everything below this; so does --min-replicas-ack.
  s.lastWriteOffset = server.store.nextOffset;
  if (!isAckedWrite(result)) return chainWrite(s, result);
  return ack
    ? withReplicas(server.replication, result, s.lastWriteOffset)
    : chainWrite(s, ackedPromise(result, OK) as Promise<Reply>);
}

/** A write's reply through --min-replicas-ack (the replicas' acks) and cluster fencing. */
function chainWrite(s: RespSession, result: Reply | Promise<Reply>): Reply | Promise<Reply> {
  const server = s.server;
  const replication = server.replication;
  let reply = result;
  if (replication.minReplicasAck > 0 && reply instanceof Promise)
    reply = replication.replicatedAck(reply, s.lastWriteOffset).catch((e: unknown) => {
      const code = (e as { code?: string }).code;
      throw code === 'NOT_ENOUGH_REPLICAS' ? new RespError(`NOT_ENOUGH_REPLICAS ${(e as Error).message}`) : e;
    });
  // Cluster fencing: a write is acknowledged only if this node still leads when its ack is due.
  if (server.ackRefusal !== undefined && reply instanceof Promise)
    reply = reply.then((r) => {
      const refusal = server.ackRefusal!();
      if (refusal !== undefined) throw new RespError(refusal);
      return r;
    });
  return reply;
}

/** A command's keys by its key positions (first, last, step), as Redis's COMMAND INFO gives them. */
export function commandKeys(c: RespCommand, argv: readonly Buffer[]): Buffer[] {
  const [first, lastSpec, step] = c.keys;
  if (first <= 0) return [];
  const last = lastSpec < 0 ? argv.length + lastSpec : lastSpec;
  const keys: Buffer[] = [];
  for (let i = first; i <= last && i < argv.length; i += Math.max(1, step)) keys.push(argv[i]!);
  return keys;
}
