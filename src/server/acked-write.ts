/**
 * A write command's result while its acknowledgement is pending, shared by
 * both protocols' command tables (commands.ts, src/resp/commands/): the
 * store's TickAck (tick-ack.ts) that covers the write, and the reply the
 * command gets once it is acknowledged. A handler writes with one of the
 * store's `…Now` methods, then returns `ackedBy(store, reply)`; a SET
 * without options returns the TickAck itself (its reply is the protocol's
 * plain one: native `true`, RESP `+OK`), which allocates nothing.
 *
 * How a connection waits for it is decided in one place,
 * `repliesOnTickAck`: directly on the TickAck (the reply is queued inside
 * the store's flush and leaves in that event-loop turn, served-connection.ts
 * awaitAck), or as a promise (`ackedPromise`) where something must run
 * between the ack and the reply: cluster mode checks its leadership
 * (fencing), and the slow log / metrics time the request until its reply.
 * Under --min-replicas-ack the TickAck waited on is the tick's through the
 * replicas (withReplicas), settled once they acknowledged it.
 *
 * Invariant: the TickAck is taken after the write (Store.writeAck), so it
 * settles only once the durability mode covers that write; a refused write
 * settles it failed, and every reply waiting on it is that error.
 */

import type { Store } from '../engine/store.js';
import { TickAck } from '../engine/tick-ack.js';

/** A write's TickAck and the reply it gets once acknowledged. */
export class AckedReply {
  constructor(
    readonly ack: TickAck,
    readonly value: unknown,
  ) {}
}

/** What a write handler returns: the TickAck (the protocol's plain reply) or an AckedReply. */
export type AckedWrite = TickAck | AckedReply;

/** The ack covering what `store` has been written so far (taken after the write), with `value` as the reply. */
export function ackedBy(store: Store, value: unknown): AckedReply {
  return new AckedReply(store.writeAck(), value);
}

export function isAckedWrite(result: unknown): result is AckedWrite {
  return result instanceof TickAck || result instanceof AckedReply;
}

/** What decides how a connection waits for a write (a ConnectionHost satisfies it). */
export interface AckHost {
  readonly metrics: { readonly timing: boolean };
  readonly replication: ReplicaAcks;
  readonly cluster: unknown;
}

/** What withReplicas needs of the server's replication (replication.ts). */
export interface ReplicaAcks {
  readonly minReplicasAck: number;
  replicatedTickAck(local: TickAck, offset: number): TickAck;
}

/**
 * The one predicate: may a write's reply wait on a TickAck directly (the
 * store's, or under --min-replicas-ack its tick's through the replicas:
 * withReplicas)? Not in a cluster (leadership is checked when the ack is
 * due), and not while requests are timed (the slow log and metrics time a
 * write until its reply).
 */
export function repliesOnTickAck(host: AckHost): boolean {
  return !host.metrics.timing && host.cluster === undefined;
}

/**
 * `write` as a connection waits on it (repliesOnTickAck held): as it is, or
 * under --min-replicas-ack with its tick's ack through the replicas
 * (replication.ts ReplicatedAck) in place of the store's: one ack per tick
 * for all its writes, not a promise chain per write. `offset`: the log's
 * end after the write.
 */
export function withReplicas(replication: ReplicaAcks, write: AckedWrite, offset: number): AckedWrite {
  if (replication.minReplicasAck === 0) return write;
  if (write instanceof TickAck) return replication.replicatedTickAck(write, offset);
  return new AckedReply(replication.replicatedTickAck(write.ack, offset), write.value);
}

/** The write's reply as a promise (`plain`: the reply of a bare TickAck), for the paths repliesOnTickAck refuses. */
export function ackedPromise(write: AckedWrite, plain: unknown): Promise<unknown> {
  if (write instanceof TickAck) return write.promise().then(() => plain);
  const value = write.value;
  return write.ack.promise().then(() => value);
}
