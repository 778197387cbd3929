/**
 * A kv-server node in a cluster: the glue between etcd (the control plane:
 * shard-member.ts for leadership, topology.ts for the slot map and the other
 * shards) and replication (the data plane). etcd decides; replication moves
 * the log:
 *
 * | control plane says            | the node does                                  |
 * | ----------------------------- | ---------------------------------------------- |
 * | this node leads, epoch E      | promote: stop following, open epoch E, accept writes |
 * | node N at host:port leads     | follow host:port (truncating a divergent tail) |
 * | fenced (lease not renewed)    | refuse writes at once, keep serving reads       |
 * | resumed (same lease renewed)  | accept writes again, same epoch                 |
 * | switchover requested          | switchover.ts: pause writes, hand over, follow  |
 *
 * Writes are gated twice: a write request is refused unless the node leads
 * (READONLY naming the primary, or MOVED for another shard's slot), and its
 * acknowledgement is refused if the node stopped leading meanwhile
 * (`writable()` checked again when the ack is sent), so a primary that lost its
 * lease acknowledges nothing, even a write it had already appended.
 */
import type { Etcd3 } from 'etcd3';
import type { Logger } from 'pino';
import { KvError } from '../errors.js';
import { type LeaderInfo, type MemberPosition, ShardMember } from './shard-member.js';
import { SwitchoverParticipant, type SwitchoverPlane } from './switchover.js';
import { ClusterView, type SlotOwner } from './topology.js';

/** What a node needs from replication. */
export interface ClusterDataPlane extends SwitchoverPlane {
  /** This node's log position (its last epoch and next offset). */
  position(): MemberPosition;
  /** Whether this node's log is complete enough to lead (not in the middle of a full resync). */
  canLead(): boolean;
  /** Become the primary in `epoch`. */
  promote(epoch: number): Promise<void> | void;
  /** Replicate from the primary at host:port. */
  follow(host: string, port: number): Promise<void> | void;
  /** Stop acknowledging writes now (leadership lost). */
  fence(reason: string): void;
}

/** What the server's request paths (native and RESP) ask of cluster mode. */
export interface ClusterGate {
  /** The error a command on `keys` gets on this node (MOVED, CROSSSLOT, CLUSTERDOWN, READONLY), or undefined. */
  check(keys: readonly (string | Uint8Array)[], write: boolean): KvError | undefined;
  /** Passes a write's result through when this node still leads; throws when it lost its lease meanwhile. */
  readonly acknowledge: <T>(result: T) => T;
  /** Every slot range with its primary and replicas (CLUSTER SLOTS / SHARDS). */
  slotOwners(): SlotOwner[];
  /** The shard this node serves. */
  readonly shard: string;
}

export interface ClusterNodeOptions {
  readonly etcd: Etcd3;
  readonly cluster: string;
  readonly shard: string;
  readonly node: string;
  /** The address other nodes and clients use for this node. */
  readonly host: string;
  readonly port: number;
  readonly leaseTtlMs?: number;
  readonly dataPlane: ClusterDataPlane;
  readonly log?: Logger;
}

export class ClusterNode implements ClusterGate {
  readonly member: ShardMember;
  readonly view: ClusterView;
  readonly switchover: SwitchoverParticipant;
  private readonly data: ClusterDataPlane;
  private readonly log: Logger | undefined;

  constructor(o: ClusterNodeOptions) {
    this.data = o.dataPlane;
    this.log = o.log;
    this.member = new ShardMember({
      etcd: o.etcd,
      cluster: o.cluster,
      shard: o.shard,
      node: o.node,
      host: o.host,
      port: o.port,
      position: () => o.dataPlane.position(),
      canLead: () => o.dataPlane.canLead(),
      ...(o.leaseTtlMs !== undefined && { leaseTtlMs: o.leaseTtlMs }),
      ...(o.log !== undefined && { log: o.log }),
    });
    this.view = new ClusterView(o.etcd, o.cluster, o.shard, o.log);
    this.switchover = new SwitchoverParticipant(o.etcd, this.member, o.dataPlane, o.log);
    this.member.on('primary', (epoch) => {
      this.switchover.onPromoted();
      void this.apply(() => this.data.promote(epoch), 'promote');
    });
    this.member.on('replica', (leader) => this.onLeader(leader));
    this.member.on('fenced', (reason) => {
      this.data.fence(reason);
      void this.view.refresh();
    });
    this.member.on('resumed', () => void this.view.refresh());
  }

  /** Loads the topology (refusing a cluster that was never created), then joins the shard. */
  async start(): Promise<void> {
    await this.view.start();
    if (this.view.current?.slotMap.rangesOf(this.member.shard) === undefined)
      throw new KvError(
        'INVALID_ARGUMENT',
        `cluster ${this.member.cluster} has no shard ${this.member.shard} (kv-cluster status lists its shards)`,
      );
    await this.member.start();
    await this.switchover.start();
  }

  async stop(): Promise<void> {
    await this.switchover.stop();
    await this.member.stop();
    await this.view.stop();
  }

  get shard(): string {
    return this.member.shard;
  }

  readonly acknowledge = <T>(result: T): T => {
    if (this.member.writable()) return result;
    throw new KvError(
      'FENCED',
      `this node stopped being the primary of shard ${this.member.shard} before acknowledging the write; it may or may not have been applied — retry on the new primary`,
    );
  };

  /** True while this node leads its shard and its lease surely holds. */
  writable(): boolean {
    return this.member.writable();
  }

  /**
   * The error a command on `keys` gets here, or undefined when this node may
   * run it: MOVED / CROSSSLOT / CLUSTERDOWN from the topology; for a write,
   * CLUSTERDOWN while a switchover pauses writes, READONLY unless this node leads.
   */
  check(keys: readonly (string | Uint8Array)[], write: boolean): KvError | undefined {
    try {
      this.view.route(keys);
    } catch (err) {
      return err as KvError;
    }
    const paused = write ? this.switchover.pausedFor : undefined;
    if (paused !== undefined) return new KvError('CLUSTERDOWN', `${paused}; not run, retry in a moment`);
    if (write && !this.member.writable()) {
      const leader = this.member.leader;
      if (leader === undefined || leader.node === this.member.node)
        return new KvError(
          'CLUSTERDOWN',
          `shard ${this.member.shard} has no primary right now; retry after the failover`,
        );
      return new KvError(
        'READONLY',
        `this node is a replica; writes go to the primary ${leader.host}:${leader.port}`,
      );
    }
    return undefined;
  }

  slotOwners(): SlotOwner[] {
    return this.view.slotOwners();
  }

  private onLeader(leader: LeaderInfo | undefined): void {
    void this.view.refresh();
    if (leader === undefined) return;
    void this.apply(() => this.data.follow(leader.host, leader.port), `follow ${leader.node}`);
  }

  private async apply(step: () => Promise<void> | void, what: string): Promise<void> {
    try {
      await step();
    } catch (err) {
      this.log?.error({ err }, `cluster: ${what} failed`);
    }
  }
}
