/**
 * Reading and creating a cluster's state in etcd: the slot map, and per shard
 * its leader and live members (etcd-keys.ts names the keys). Used by
 * kv-cluster and by nodes answering topology questions. Reads only what etcd
 * says now; leadership itself is shard-member.ts's business.
 */
import type { Etcd3 } from 'etcd3';
import { KvError } from '../errors.js';
import { leaderKey, membersPrefix, slotMapKey, switchoverKey } from './etcd-keys.js';
import type { LeaderInfo, MemberInfo } from './shard-member.js';
import { SlotMap } from './slot-map.js';
import type { SlotRange } from './slots.js';
import { parseSwitchover, type SwitchoverRequest } from './switchover-request.js';

export interface ShardState {
  readonly id: string;
  readonly slots: readonly SlotRange[];
  /** Undefined while the shard has no primary (a failover in progress, or no node yet). */
  readonly leader: LeaderInfo | undefined;
  /** Live members (their lease holds), the leader included, by node name. */
  readonly members: readonly MemberInfo[];
  /** A planned switchover (kv-cluster failover) whose request key exists: in progress, or just ended. */
  readonly switchover?: SwitchoverRequest;
}

export interface ClusterState {
  readonly cluster: string;
  readonly slotMap: SlotMap;
  readonly shards: readonly ShardState[];
}

/**
 * Writes the slot map of a new cluster. Create-only: a cluster that already
 * has a map is refused (changing the map of a live cluster is resharding,
 * which moves data and is not done by overwriting a key).
 */
export async function createCluster(etcd: Etcd3, cluster: string, map: SlotMap): Promise<void> {
  const key = slotMapKey(cluster);
  const res = await etcd
    .if(key, 'Create', '==', 0)
    .then(etcd.put(key).value(JSON.stringify(map)))
    .commit();
  if (!res.succeeded)
    throw new KvError(
      'INVALID_ARGUMENT',
      `cluster ${cluster} already exists in etcd (its slot map is at ${key})`,
    );
}

/** The slot map, or undefined when the cluster was never created. */
export async function readSlotMap(etcd: Etcd3, cluster: string): Promise<SlotMap | undefined> {
  const json = await etcd.get(slotMapKey(cluster)).string();
  return json === null ? undefined : SlotMap.parse(json);
}

export async function readClusterState(etcd: Etcd3, cluster: string): Promise<ClusterState> {
  const slotMap = await readSlotMap(etcd, cluster);
  if (slotMap === undefined)
    throw new KvError(
      'INVALID_ARGUMENT',
      `no cluster named ${cluster} in etcd (create it with kv-cluster create)`,
    );
  const shards = await Promise.all(
    slotMap.shards.map(async (s): Promise<ShardState> => {
      const [leaderRes, members, switchoverJson] = await Promise.all([
        etcd.get(leaderKey(cluster, s.id)).exec(),
        etcd.getAll().prefix(membersPrefix(cluster, s.id)).strings(),
        etcd.get(switchoverKey(cluster, s.id)).string(),
      ]);
      const kv = leaderRes.kvs[0];
      let leader: LeaderInfo | undefined;
      if (kv !== undefined) {
        const v = JSON.parse(kv.value.toString()) as { node: string; host: string; port: number };
        leader = { node: v.node, host: v.host, port: v.port, epoch: Number(kv.create_revision) };
      }
      const list = Object.values(members)
        .map((m) => JSON.parse(m) as MemberInfo)
        .sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
      const switchover = switchoverJson === null ? undefined : parseSwitchover(switchoverJson);
      return { id: s.id, slots: s.slots, leader, members: list, ...(switchover ? { switchover } : {}) };
    }),
  );
  return { cluster, slotMap, shards };
}
