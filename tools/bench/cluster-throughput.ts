/**
 * bench:cluster's throughput part: SET and GET ops/s through the cluster SDK
 * (connectCluster) against 1, 2 and 3 shards of one primary each, on a
 * private etcd. The load: `inflight` loops in this process, each with one
 * request at a time, for `durationMs` per run; the SDK pipelines what one
 * tick sends to one node into one write. SET runs first (it fills the keys
 * GET then reads). Each shard count gets fresh processes; each workload the
 * median of `runs` runs.
 *
 * What the figures can say on a 2-core machine: the load generator takes
 * about one core, so N primaries share the other; more shards add processes,
 * not cores. Each shard is one kv-server process, i.e. at most one core.
 */
import { join } from 'node:path';
import { SlotMap } from '../../src/cluster/slot-map.js';
import { createCluster } from '../../src/cluster/state.js';
import { connect, connectCluster, type KvClusterClient } from '../../src/index.js';
import { type ClusterNodeProcess, spawnClusterNode, spawnNode, waitHealthy } from '../lib/cluster-nodes.js';
import { startEtcd } from '../lib/etcd.js';
import { logLine, median } from './lib.js';

/** Distinct keys written and read. */
export const THROUGHPUT_KEYS = 10_000;
/** Value size, bytes (kv-bench's default). */
export const THROUGHPUT_VALUE_BYTES = 100;
/** Lease of the nodes: irrelevant to throughput, the default. */
const LEASE_MS = 5_000;

export interface ThroughputOptions {
  shardCounts: readonly number[];
  durationMs: number;
  runs: number;
  inflight: number;
}

export interface ThroughputRow {
  shards: number;
  setOps: number[];
  getOps: number[];
  setMedian: number;
  getMedian: number;
}

async function load(
  kv: Pick<KvClusterClient, 'get' | 'set'>,
  op: 'set' | 'get',
  o: ThroughputOptions,
  value: string,
): Promise<number> {
  let done = 0;
  let next = 0;
  const started = performance.now();
  const until = started + o.durationMs;
  await Promise.all(
    Array.from({ length: o.inflight }, async () => {
      while (performance.now() < until) {
        const key = `key:${next++ % THROUGHPUT_KEYS}`;
        if (op === 'set') await kv.set(key, value);
        else await kv.get(key);
        done++;
      }
    }),
  );
  return done / ((performance.now() - started) / 1000);
}

async function runs(
  kv: Pick<KvClusterClient, 'get' | 'set'>,
  label: string,
  o: ThroughputOptions,
): Promise<{ setOps: number[]; getOps: number[] }> {
  const value = 'v'.repeat(THROUGHPUT_VALUE_BYTES);
  const setOps: number[] = [];
  const getOps: number[] = [];
  for (let r = 0; r < o.runs; r++) {
    setOps.push(await load(kv, 'set', o, value));
    getOps.push(await load(kv, 'get', o, value));
    logLine(
      'cluster',
      `${label}, run ${r + 1}/${o.runs}: SET ${setOps.at(-1)!.toFixed(0)} ops/s, GET ${getOps.at(-1)!.toFixed(0)} ops/s`,
    );
  }
  return { setOps, getOps };
}

/** The peer in the same run: one standalone kv-server (no cluster mode) through connect(). */
export async function standaloneThroughput(root: string, o: ThroughputOptions): Promise<ThroughputRow> {
  const node = await spawnNode({ name: 'standalone', dir: join(root, 'standalone') });
  const kv = await connect({ host: '127.0.0.1', port: node.port });
  try {
    const { setOps, getOps } = await runs(kv, 'standalone kv-server', o);
    return { shards: 0, setOps, getOps, setMedian: median(setOps), getMedian: median(getOps) };
  } finally {
    await kv.close();
    await node.kill();
  }
}

async function measure(root: string, shards: number, o: ThroughputOptions): Promise<ThroughputRow> {
  const etcd = await startEtcd(join(root, `etcd-${shards}`));
  const nodes: ClusterNodeProcess[] = [];
  let kv: KvClusterClient | undefined;
  try {
    const ids = Array.from({ length: shards }, (_, i) => `s${i + 1}`);
    await createCluster(etcd.client(), 'tp', SlotMap.even(ids));
    for (const id of ids)
      nodes.push(
        await spawnClusterNode({
          etcd: etcd.url,
          cluster: 'tp',
          shard: id,
          name: `${id}-n1`,
          dir: join(root, `tp${shards}-${id}`),
          leaseMs: LEASE_MS,
        }),
      );
    await waitHealthy(() => nodes.map((n) => n.port), shards, 0, 60_000);
    kv = await connectCluster({ nodes: nodes.map((n) => ({ host: '127.0.0.1', port: n.port })) });
    const { setOps, getOps } = await runs(kv, `${shards} shard(s)`, o);
    return { shards, setOps, getOps, setMedian: median(setOps), getMedian: median(getOps) };
  } finally {
    await kv?.close();
    for (const n of nodes) await n.kill();
    await etcd.stop();
  }
}

/** Runs a standalone kv-server (shards 0, the peer), then every shard count in turn. */
export async function clusterThroughput(root: string, o: ThroughputOptions): Promise<ThroughputRow[]> {
  const rows: ThroughputRow[] = [await standaloneThroughput(root, o)];
  for (const shards of o.shardCounts) rows.push(await measure(root, shards, o));
  return rows;
}
