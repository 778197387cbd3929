/**
 * The one place that builds the names of segkv's keys in etcd. Everything a
 * cluster keeps lives under `/segkv/<cluster>/`:
 *
 * | key                                   | value                         | lifetime            |
 * | ------------------------------------- | ----------------------------- | ------------------- |
 * | `/segkv/<c>/slots`                    | the slot map (slot-map.ts)    | until changed       |
 * | `/segkv/<c>/shards/<s>/leader`        | the shard primary (member.ts) | the leader's lease  |
 * | `/segkv/<c>/shards/<s>/members/<n>`   | a node's address and position | the node's lease    |
 * | `/segkv/<c>/shards/<s>/switchover`    | a planned switchover (switchover-request.ts) | kv-cluster's lease |
 *
 * Leader and member keys are bound to a lease, so a node that stops renewing
 * disappears from etcd within the lease's TTL without anyone deleting it.
 */
import { KvError } from '../errors.js';

/** Cluster, shard and node names: what may appear between slashes. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export function checkName(what: string, name: unknown): string {
  if (typeof name !== 'string' || !NAME.test(name))
    throw new KvError(
      'INVALID_ARGUMENT',
      `${what} must be 1-64 characters of letters, digits, '_', '.', '-' (starting with a letter or digit), got ${JSON.stringify(name)}`,
    );
  return name;
}

export function clusterPrefix(cluster: string): string {
  return `/segkv/${cluster}/`;
}

export function slotMapKey(cluster: string): string {
  return `${clusterPrefix(cluster)}slots`;
}

export function shardPrefix(cluster: string, shard: string): string {
  return `${clusterPrefix(cluster)}shards/${shard}/`;
}

export function leaderKey(cluster: string, shard: string): string {
  return `${shardPrefix(cluster, shard)}leader`;
}

export function membersPrefix(cluster: string, shard: string): string {
  return `${shardPrefix(cluster, shard)}members/`;
}

export function memberKey(cluster: string, shard: string, node: string): string {
  return `${membersPrefix(cluster, shard)}${node}`;
}

export function switchoverKey(cluster: string, shard: string): string {
  return `${shardPrefix(cluster, shard)}switchover`;
}
