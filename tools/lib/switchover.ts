/**
 * `kv-cluster failover --shard ID [--to NODE]`: a planned switchover with no
 * lost write (src/cluster/switchover.ts does the nodes' part). This side
 * picks the target (the most advanced replica unless --to names one),
 * writes the request under its own lease (create-only, and only while the
 * primary it names still leads), and watches until the target leads, the
 * primary aborts, or the timeout passes. The lease is revoked at the end
 * whatever happened: a primary still paused then takes writes again, and a
 * kv-cluster killed midway leaves nothing behind once its lease expires.
 */
import { performance } from 'node:perf_hooks';
import type { Etcd3 } from 'etcd3';
import { leaderKey, switchoverKey } from '../../src/cluster/etcd-keys.js';
import type { LeaderInfo } from '../../src/cluster/shard-member.js';
import { readClusterState } from '../../src/cluster/state.js';
import {
  chooseTarget,
  newSwitchover,
  parseSwitchover,
  type SwitchoverPhase,
} from '../../src/cluster/switchover-request.js';
import { KvError } from '../../src/errors.js';

/** TTL of kv-cluster's lease on the request (kept alive while it runs), seconds. */
export const REQUEST_LEASE_TTL_S = 5;
/** How often kv-cluster reads the shard's leader and request while it waits, ms. */
const WATCH_POLL_MS = 20;

export type SwitchoverResult =
  | { ok: true; shard: string; from: LeaderInfo; to: LeaderInfo; ms: number }
  | { ok: false; shard: string; message: string };

/** What each phase means to an operator reading a timeout. */
const PHASE_HINT: Record<SwitchoverPhase, string> = {
  requested: 'the primary never answered the request',
  paused: 'the target had not caught up with the primary',
  'caught-up': 'the primary had not released the shard',
  released: 'the primary released the shard but the target had not taken it',
  aborted: 'the primary aborted',
};

export async function runSwitchover(
  etcd: Etcd3,
  cluster: string,
  shard: string,
  to: string | undefined,
  timeoutMs: number,
): Promise<SwitchoverResult> {
  const state = await readClusterState(etcd, cluster);
  const s = state.shards.find((x) => x.id === shard);
  if (s === undefined)
    throw new KvError(
      'INVALID_ARGUMENT',
      `cluster ${cluster} has no shard ${shard} (its shards: ${state.shards.map((x) => x.id).join(', ')})`,
    );
  const from = s.leader;
  if (from === undefined)
    throw new KvError(
      'INVALID_ARGUMENT',
      `shard ${shard} has no primary now (a failover may be under way); nothing to switch over`,
    );
  const target = chooseTarget(shard, from.node, s.members, to);
  const request = newSwitchover(from.node, target.node, from.epoch, timeoutMs);
  const key = switchoverKey(cluster, shard);
  const leader = leaderKey(cluster, shard);
  const lease = etcd.lease(REQUEST_LEASE_TTL_S);
  lease.on('lost', () => {});
  const started = performance.now();
  try {
    const leaseId = await lease.grant();
    const res = await etcd
      .if(key, 'Create', '==', 0)
      .and(leader, 'Create', '==', from.epoch)
      .then(lease.put(key).value(JSON.stringify(request)))
      .commit();
    // A retried transaction fails its conditions when its first attempt committed: ours is there then.
    const existing = res.succeeded ? undefined : (await etcd.get(key).exec()).kvs[0];
    if (existing !== undefined && String(existing.lease) === leaseId) {
      // Written by this run.
    } else if (!res.succeeded) {
      const other = parseSwitchover(existing?.value.toString() ?? '');
      throw new KvError(
        'INVALID_ARGUMENT',
        other !== undefined
          ? `a switchover of shard ${shard} is already under way (${other.from} → ${other.to}, phase ${other.phase}); wait for it to end`
          : `the primary of shard ${shard} changed meanwhile; run kv-cluster failover again`,
      );
    }
    const fail = (why: string): SwitchoverResult => ({
      ok: false,
      shard,
      message: `switchover of shard ${shard} from ${from.node} to ${target.node} ${why}`,
    });
    let phase: SwitchoverPhase = 'requested';
    for (;;) {
      const [leaderRes, json] = await Promise.all([etcd.get(leader).exec(), etcd.get(key).string()]);
      const kv = leaderRes.kvs[0];
      if (kv !== undefined && Number(kv.create_revision) !== from.epoch) {
        const v = JSON.parse(kv.value.toString()) as { node: string; host: string; port: number };
        const now: LeaderInfo = { ...v, epoch: Number(kv.create_revision) };
        if (now.node === target.node)
          return { ok: true, shard, from, to: now, ms: Math.round(performance.now() - started) };
        return fail(`failed: ${now.node} took the shard instead (epoch ${now.epoch}); see kv-cluster status`);
      }
      const r = json === null ? undefined : parseSwitchover(json);
      if (r === undefined) return fail('failed: the request vanished from etcd (kv-cluster lost its lease)');
      phase = r.phase;
      if (r.phase === 'aborted') return fail(`was aborted by the primary: ${r.reason ?? 'no reason given'}`);
      if (performance.now() - started > timeoutMs)
        return fail(
          `timed out after ${timeoutMs} ms in phase ${phase} (${PHASE_HINT[phase]}); the request is withdrawn` +
            (phase === 'released'
              ? `, and the shard elects its most advanced member as after a failure`
              : `, and ${from.node} takes writes again`),
        );
      await new Promise((resolve) => setTimeout(resolve, WATCH_POLL_MS));
    }
  } finally {
    await lease.revoke().catch(() => {});
  }
}
