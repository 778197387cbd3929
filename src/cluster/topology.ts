/**
 * A node's view of its cluster: the slot map and every shard's primary and
 * replicas, read from etcd and kept current by a watch on the cluster's
 * prefix (with a periodic full read as the fallback when a watch breaks).
 * It answers the routing questions of every keyed command, synchronously:
 * does this node own the keys' slot, and if not, who does (MOVED), or do the
 * keys span slots (CROSSSLOT).
 *
 * The view may lag etcd by a watch event; that is safe because ownership of
 * writes is decided by leadership (shard-member.ts fences), not by the view:
 * a stale view only sends a client to a node that answers MOVED again.
 */
import type { Etcd3, Watcher } from 'etcd3';
import type { Logger } from 'pino';
import { KvError } from '../errors.js';
import { cancelWatch } from './etcd-client.js';
import { clusterPrefix } from './etcd-keys.js';
import { ETCD_WATCH_CANCEL_MS } from './limits.js';
import { keySlot, type SlotRange } from './slots.js';
import { type ClusterState, readClusterState } from './state.js';

/** How often the view is re-read in full even when watch events arrive. */
export const TOPOLOGY_REFRESH_MS = 5_000;

/** One slot range with its primary and replicas, as CLUSTER SLOTS lists it. */
export interface SlotOwner {
  readonly range: SlotRange;
  readonly shard: string;
  readonly primary: { readonly node: string; readonly host: string; readonly port: number } | undefined;
  readonly replicas: readonly { readonly node: string; readonly host: string; readonly port: number }[];
}

export class ClusterView {
  private state: ClusterState | undefined;
  private watcher: Watcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private reading: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly etcd: Etcd3,
    readonly cluster: string,
    /** This node's shard, or undefined for a client-side view. */
    readonly shard: string | undefined,
    private readonly log?: Logger,
  ) {}

  /** Reads the state once (refusing an unknown cluster) and starts following it. */
  async start(): Promise<void> {
    this.state = await readClusterState(this.etcd, this.cluster);
    try {
      this.watcher = await this.etcd.watch().prefix(clusterPrefix(this.cluster)).create();
      this.watcher.on('data', () => void this.refresh());
      this.watcher.on('error', () => {});
    } catch (err) {
      this.log?.warn(
        { err: (err as Error).message },
        'cluster: cannot watch the topology; re-reading it periodically',
      );
    }
    const loop = () => {
      if (this.stopped) return;
      this.timer = setTimeout(() => void this.refresh().finally(loop), TOPOLOGY_REFRESH_MS);
    };
    loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await cancelWatch(this.watcher, ETCD_WATCH_CANCEL_MS);
  }

  /** Re-reads the whole state now (coalesced with a read already under way). */
  refresh(): Promise<void> {
    this.reading ??= readClusterState(this.etcd, this.cluster)
      .then(
        (s) => {
          this.state = s;
        },
        (err: unknown) => {
          this.log?.warn({ err: (err as Error).message }, 'cluster: cannot read the topology from etcd');
        },
      )
      .finally(() => {
        this.reading = undefined;
      });
    return this.reading;
  }

  get current(): ClusterState | undefined {
    return this.state;
  }

  /**
   * Throws the error a command on `keys` gets on this node: CROSSSLOT when
   * they span slots, MOVED when another shard owns their slot, CLUSTERDOWN
   * when the view is not loaded. Returns the slot otherwise.
   */
  route(keys: readonly (string | Uint8Array)[]): number {
    const state = this.state;
    if (state === undefined)
      throw new KvError('CLUSTERDOWN', 'the cluster topology is not loaded yet; retry');
    let slot = -1;
    for (const k of keys) {
      const s = keySlot(k);
      if (slot === -1) slot = s;
      else if (s !== slot)
        throw new KvError(
          'CROSSSLOT',
          "keys in request don't hash to the same slot; use a hash tag such as {user1}",
        );
    }
    if (slot === -1) return -1;
    const owner = state.slotMap.shardOfSlot(slot);
    if (owner === this.shard) return slot;
    const leader = state.shards.find((s) => s.id === owner)?.leader;
    if (leader === undefined)
      throw new KvError(
        'CLUSTERDOWN',
        `slot ${slot} (shard ${owner}) has no primary right now; retry after the failover`,
      );
    throw new KvError('MOVED', `${slot} ${leader.host}:${leader.port}`);
  }

  /** Every slot range with its owners, for CLUSTER SLOTS / SHARDS and the SDK. */
  slotOwners(): SlotOwner[] {
    const state = this.state;
    if (state === undefined) return [];
    const out: SlotOwner[] = [];
    for (const s of state.shards) {
      const primary = s.leader && { node: s.leader.node, host: s.leader.host, port: s.leader.port };
      const replicas = s.members
        .filter((m) => m.node !== s.leader?.node)
        .map((m) => ({ node: m.node, host: m.host, port: m.port }));
      for (const range of s.slots) out.push({ range, shard: s.id, primary, replicas });
    }
    return out.sort((a, b) => a.range[0] - b.range[0]);
  }
}
