#!/usr/bin/env node
/**
 * torture:cluster — many failover cycles against a real cluster (issue 13):
 * a private etcd, 3 shards × (primary + replica), `--min-replicas-ack 1`,
 * SDK writers through connectCluster (tools/lib/cluster-writers.ts) and
 * every node probed directly (tools/lib/ack-probe.ts) for the whole run.
 *
 * Each cycle picks a shard (round robin) and its current primary, then
 *   - even cycles: SIGKILL it, wait until another node of the shard leads
 *     (it answers writes: acknowledged, or NOREPLICAS while it has no
 *     replica to satisfy --min-replicas-ack), restart the killed node on its
 *     data directory (it rejoins as a replica);
 *   - odd cycles: SIGSTOP it, wait until another node leads (its lease
 *     expired and the replica took over), SIGCONT it (it must rejoin as a
 *     replica);
 * and waits until every shard has a primary and a replica again, and the
 * shard acknowledges writes.
 *
 * Violations (exit 1):
 * - the stopped primary acknowledged a probe write sent after its lease
 *   could have expired (fence: last renewal + TTL − TTL/4, so any write sent
 *   later than the stop + that much);
 * - two nodes of one shard acknowledged at the same time (epoch-attributed
 *   probes, ack-probe.ts splitBrain);
 * - at the end: a key that does not read as its last acknowledged state or a
 *   state whose fate is unknown (a lost write, a deleted key back, a value
 *   never written);
 * - a writer met an error other than those of a failover, or a cycle did not
 *   recover within its time limit.
 *
 * Usage: node dist/tools/torture-cluster.js [--cycles N] [--quick] [--lease-ms MS] [--max-seconds T]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SlotMap } from '../src/cluster/slot-map.js';
import { keySlot } from '../src/cluster/slots.js';
import { createCluster } from '../src/cluster/state.js';
import { connectCluster } from '../src/index.js';
import { AckProbe } from './lib/ack-probe.js';
import { integerAtLeast, parseOptionsStrictly, runHarness } from './lib/cli.js';
import { type ClusterNodeProcess, spawnClusterNode, waitHealthy } from './lib/cluster-nodes.js';
import { ClusterWriters } from './lib/cluster-writers.js';
import { startEtcd } from './lib/etcd.js';
import { markdownTable } from './lib/table.js';

const SHARDS = ['s1', 's2', 's3'];
const NODES_PER_SHARD = 2;
const WRITERS = 6;
const KEYS_PER_WRITER = 30;
/** Clock granularity between this process and the nodes, ms. */
const SLACK_MS = 50;
/** Longest a cycle may take to fail over, or to be whole again, ms. */
const RECOVERY_TIMEOUT_MS = 60_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Options {
  cycles: number;
  leaseMs: number;
  maxSeconds: number;
}

function parseOptions(argv: string[]): Options {
  const values = parseOptionsStrictly(argv, {
    cycles: { type: 'string' },
    quick: { type: 'boolean', default: false },
    'lease-ms': { type: 'string' },
    'max-seconds': { type: 'string' },
    help: { type: 'boolean', default: false },
  });
  if (values.help) {
    process.stdout.write(
      'usage: torture:cluster [--cycles N (default 20; 2 with --quick)] [--quick] [--lease-ms MS (default 2000)]\n' +
        '                       [--max-seconds T (default 1800; 75 with --quick): no new cycle after T]\n',
    );
    process.exit(0);
  }
  const quick = values.quick === true;
  const leaseMs = integerAtLeast('lease-ms', values['lease-ms'], 2000, 1000);
  if (leaseMs % 1000 !== 0) throw new Error(`--lease-ms must be whole seconds, got ${leaseMs}`);
  return {
    cycles: integerAtLeast('cycles', values.cycles, quick ? 2 : 20, 1),
    leaseMs,
    maxSeconds: integerAtLeast('max-seconds', values['max-seconds'], quick ? 75 : 1800, 1),
  };
}

interface CycleRow {
  cycle: number;
  action: 'SIGKILL' | 'SIGSTOP';
  shard: string;
  node: string;
  /** From the kill/stop to the first answer of another node of the shard as its primary, ms. */
  failoverMs: number;
  /** Until every shard had a primary and a replica again, and this one acknowledged a write, ms. */
  wholeMs: number;
  sdkAcks: number;
  lateAcks: number;
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  const fenceMs = o.leaseMs - o.leaseMs / 4;
  const started = Date.now();
  const root = mkdtempSync(join(tmpdir(), 'segkv-torture-cluster-'));
  const etcd = await startEtcd(root);
  const nodes = new Map<string, ClusterNodeProcess>();
  const violations: string[] = [];
  const rows: CycleRow[] = [];
  const log = (m: string) =>
    process.stderr.write(`torture:cluster ${((Date.now() - started) / 1000).toFixed(1)}s ${m}\n`);
  try {
    const slotMap = SlotMap.even(SHARDS);
    await createCluster(etcd.client(), 'torture', slotMap);
    const probeKeys = new Map<string, string>();
    for (let i = 0; probeKeys.size < SHARDS.length; i++) {
      const shard = slotMap.shardOfSlot(keySlot(`probe${i}`));
      if (shard !== undefined && !probeKeys.has(shard)) probeKeys.set(shard, `probe${i}`);
    }
    const start = async (shard: string, name: string) => {
      const n = await spawnClusterNode({
        etcd: etcd.url,
        cluster: 'torture',
        shard,
        name,
        dir: join(root, name),
        leaseMs: o.leaseMs,
        args: ['--min-replicas-ack', '1', '--min-replicas-timeout-ms', '1000'],
      });
      nodes.set(name, n);
    };
    await Promise.all(
      SHARDS.flatMap((s) => Array.from({ length: NODES_PER_SHARD }, (_, i) => start(s, `${s}-n${i + 1}`))),
    );
    /** Nodes that run (not killed, not stopped). */
    const stopped = new Set<string>();
    const livePorts = () =>
      [...nodes].filter(([name, n]) => n.alive() && !stopped.has(name)).map(([, n]) => n.port);
    const whole = () => waitHealthy(livePorts, SHARDS.length, NODES_PER_SHARD - 1, RECOVERY_TIMEOUT_MS);
    await whole();
    log(`cluster up: ${SHARDS.length} shards × ${NODES_PER_SHARD} nodes, lease ${o.leaseMs} ms`);

    const kv = await connectCluster({
      nodes: livePorts().map((port) => ({ host: '127.0.0.1', port })),
      requestTimeoutMs: 5_000,
    });
    const writers = new ClusterWriters(kv, { writers: WRITERS, keysPerWriter: KEYS_PER_WRITER });
    const probe = new AckProbe(
      () =>
        [...nodes].map(([node, n]) => ({
          node,
          shard: n.spec.shard,
          port: () => (n.alive() ? n.port : undefined),
        })),
      (shard) => probeKeys.get(shard)!,
    );
    writers.start();
    probe.start();
    let writersFailed: unknown;
    await sleep(1_000);

    try {
      for (let cycle = 0; cycle < o.cycles; cycle++) {
        if (Date.now() - started > o.maxSeconds * 1000) {
          log(`time budget of ${o.maxSeconds} s spent after ${cycle} cycles`);
          break;
        }
        const shard = SHARDS[cycle % SHARDS.length]!;
        const rowsNow = await whole();
        const primaryPort = rowsNow.find((r) => r.shard === shard)!.primary!.port;
        const [name, victim] = [...nodes].find(([, n]) => n.port === primaryPort && n.alive())!;
        const action = cycle % 2 === 0 ? 'SIGKILL' : 'SIGSTOP';
        const acksBefore = writers.acks;
        const at = Date.now();
        if (action === 'SIGKILL') await victim.kill();
        else {
          stopped.add(name);
          victim.proc.kill('SIGSTOP');
        }
        // Another node of the shard acknowledges: the failover is done.
        const deadline = Date.now() + RECOVERY_TIMEOUT_MS;
        let first: number | undefined;
        while (first === undefined) {
          // With --min-replicas-ack 1 the new primary answers NOREPLICAS until the old one is back as its
          // replica: refused before running, but only by a node that holds the shard's lease.
          first = probe.writes.find(
            (w) => (w.ok || w.code === 'NOREPLICAS') && w.shard === shard && w.node !== name && w.sent > at,
          )?.recv;
          if (first === undefined) {
            if (Date.now() > deadline) {
              const seen = probe.writes.filter((w) => w.shard === shard && w.sent > at);
              throw new Error(
                `cycle ${cycle}: shard ${shard} did not fail over after ${action} of ${name}; probes since: ` +
                  JSON.stringify(seen.slice(-6)),
              );
            }
            await sleep(20);
          }
        }
        if (action === 'SIGKILL') await start(shard, name);
        else {
          victim.proc.kill('SIGCONT');
          stopped.delete(name);
        }
        await whole();
        while (!probe.writes.some((w) => w.ok && w.shard === shard && w.sent > at)) {
          if (Date.now() > deadline) throw new Error(`cycle ${cycle}: shard ${shard} acknowledges no write`);
          await sleep(20);
        }
        const wholeAt = Date.now();
        // The old primary acknowledged nothing sent after its lease could have expired.
        const late = probe.acksSentBetween(at + fenceMs + SLACK_MS, wholeAt, name);
        for (const w of late)
          violations.push(
            `cycle ${cycle}: ${name} (${action}) acknowledged a write sent ${w.sent - at} ms after it was stopped ` +
              `(fence at ${fenceMs} ms), epoch ${w.epoch ?? '?'}`,
          );
        rows.push({
          cycle,
          action,
          shard,
          node: name,
          failoverMs: first - at,
          wholeMs: wholeAt - at,
          sdkAcks: writers.acks - acksBefore,
          lateAcks: late.length,
        });
        log(
          `cycle ${cycle + 1}/${o.cycles}: ${action} ${name}: failover ${first - at} ms, whole again ${wholeAt - at} ms`,
        );
        await sleep(500);
      }
    } finally {
      await writers.stop().catch((err: unknown) => {
        writersFailed = err;
      });
      await probe.stop();
    }
    if (writersFailed !== undefined)
      violations.push(
        `a writer failed with an error no failover explains: ${(writersFailed as Error).message}`,
      );
    violations.push(...probe.splitBrain());
    await whole();
    violations.push(...(await writers.verify()));
    await kv.close();

    const header = [
      'cycle',
      'action',
      'shard',
      'node',
      'failover ms',
      'whole again ms',
      'SDK acks',
      'late acks',
    ];
    const body = rows.map((r) => [
      String(r.cycle + 1),
      r.action,
      r.shard,
      r.node,
      String(r.failoverMs),
      String(r.wholeMs),
      String(r.sdkAcks),
      String(r.lateAcks),
    ]);
    for (const v of violations.slice(0, 50)) process.stdout.write(`VIOLATION ${v}\n`);
    process.stdout.write(
      `\ntorture:cluster summary (${SHARDS.length} shards × ${NODES_PER_SHARD} nodes, --min-replicas-ack 1, ` +
        `lease ${o.leaseMs} ms, ${((Date.now() - started) / 1000).toFixed(1)} s)\n${markdownTable([header, ...body])}\n`,
    );
    const codes = [...writers.codes].map(([c, n]) => `${c} ${n}`).join(', ') || 'none';
    const probeAcks = probe.writes.filter((w) => w.ok).length;
    process.stdout.write(
      `SDK writes acknowledged ${writers.acks}, not acknowledged ${writers.failed} (${codes}); ` +
        `keys checked ${writers.logs.size}; probe writes ${probe.writes.length} (${probeAcks} acknowledged); ` +
        `violations ${violations.length}\n` +
        'checked: every acknowledged write present, no deleted key back, no value never written, ' +
        'no stopped primary acknowledging after its fence, no two nodes of a shard acknowledging at once.\n',
    );
    process.exitCode = violations.length > 0 ? 1 : 0;
  } catch (err) {
    process.exitCode = 1;
    throw err;
  } finally {
    for (const [name, n] of nodes) {
      n.proc.kill('SIGCONT');
      await n.kill();
      writeFileSync(join(root, `${name}.log`), n.stderr());
    }
    await etcd.stop();
    if (process.exitCode === 1) process.stderr.write(`torture:cluster: data kept in ${root}\n`);
    else rmSync(root, { recursive: true, force: true });
  }
}

runHarness('torture:cluster', main);
