#!/usr/bin/env node
/**
 * torture:replication — a kill loop over plain replication (issue 12), no
 * etcd: one primary and two replicas with `--min-replicas-ack 1`, tiny
 * segments and an eager compactor on every node, SDK writers on the primary.
 *
 * Each cycle, after a random stretch of writes (in half the cycles one
 * replica is SIGSTOPped for part of it, so it is behind at the kill; a third
 * of the kills land right after a COMPACT was sent to the primary):
 * - two cycles in three SIGKILL the primary; the replica with the higher log
 *   end is promoted (REPLICAOF NO ONE), the other follows it, and the killed
 *   node restarts on its own directory with `--replica-of` the new primary,
 *   so it must find where its log diverged and truncate there (KIP-101);
 * - every third cycle SIGKILLs a replica instead and restarts it: it must
 *   resume from where it was (a partial resync).
 * Then the writers pause, a marker write is WAITed on by both replicas, and:
 * - every key on the primary reads as its last acknowledged state, or as a
 *   write whose fate was unknown (in flight at the kill, or refused with
 *   NOT_ENOUGH_REPLICAS after it ran): anything else is a lost write, a
 *   deleted key back, or a value no one wrote;
 * - both replicas hold exactly the primary's keys and values.
 * A write error other than those a failover explains is a violation too.
 *
 * Usage: node dist/tools/torture-replication.js [--cycles N] [--quick] [--seed S] [--max-seconds T]
 * (exit 1 on any violation). Every wait is bounded.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KvClient } from '../src/index.js';
import { integerAtLeast, parseOptionsStrictly, runHarness } from './lib/cli.js';
import { type NodeProcess, type NodeSpec, spawnNode } from './lib/cluster-nodes.js';
import { ClusterWriters, type WriteTarget } from './lib/cluster-writers.js';
import { mulberry32 } from './lib/prng.js';
import { markdownTable } from './lib/table.js';

const WRITERS = 6;
const KEYS_PER_WRITER = 40;
/** Longest a promoted primary and its replicas may take to be whole and caught up, ms. */
const RECOVERY_TIMEOUT_MS = 60_000;
const NODE_FLAGS = [
  ...['--min-replicas-ack', '1', '--min-replicas-timeout-ms', '1000'],
  // Tiny segments and an eager compactor on every node: rotations, seals and swaps race the feed.
  ...['--max-segment-bytes', '16384', '--compaction-min-dead-ratio', '0.1'],
  ...['--compaction-min-dead-bytes', '0', '--compaction-check-interval-ms', '50'],
  ...['--compaction-min-interval-ms', '0'],
];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Options {
  cycles: number;
  seed: number;
  maxSeconds: number;
}

function parseOptions(argv: string[]): Options {
  const values = parseOptionsStrictly(argv, {
    cycles: { type: 'string' },
    quick: { type: 'boolean', default: false },
    seed: { type: 'string' },
    'max-seconds': { type: 'string' },
    help: { type: 'boolean', default: false },
  });
  if (values.help) {
    process.stdout.write(
      'usage: torture:replication [--cycles N (default 30; 3 with --quick)] [--quick] [--seed S]\n' +
        '                           [--max-seconds T (default 1200; 90 with --quick): no new cycle after T]\n',
    );
    process.exit(0);
  }
  const quick = values.quick === true;
  return {
    cycles: integerAtLeast('cycles', values.cycles, quick ? 3 : 30, 1),
    seed: integerAtLeast('seed', values.seed, Math.floor(Math.random() * 2 ** 31), 0),
    maxSeconds: integerAtLeast('max-seconds', values['max-seconds'], quick ? 90 : 1200, 1),
  };
}

function client(port: number, requestTimeoutMs = 5_000): KvClient<string> {
  const c = new KvClient<string>({ host: '127.0.0.1', port, reconnect: false, requestTimeoutMs });
  c.on('error', () => {});
  return c;
}

async function withClient<T>(port: number, f: (c: KvClient<string>) => Promise<T>): Promise<T> {
  const c = client(port);
  try {
    return await f(c);
  } finally {
    await c.close().catch(() => {});
  }
}

/**
 * A writer's target: a client on whichever node is the primary now
 * (reopened when the primary moves, and after a failure: `reconnect: false`
 * keeps a closed connection closed).
 */
function primaryTarget(primaryPort: () => number): WriteTarget {
  let port = primaryPort();
  let c: KvClient<string> | undefined = client(port);
  // Opened right before a write: a client left idle on a dead port closes itself.
  const current = async () => {
    if (c !== undefined && port === primaryPort()) return c;
    await c?.close().catch(() => {});
    port = primaryPort();
    c = client(port);
    return c;
  };
  const drop = async () => {
    await c?.close().catch(() => {});
    c = undefined;
  };
  return {
    set: async (key, value) => (await current()).set(key, value),
    del: async (key) => (await current()).del(key),
    failed: drop,
    close: drop,
  };
}

/** Checks every key on `port` against the writers' model; the model then takes what the key holds. */
async function verify(writers: ClusterWriters, port: number): Promise<string[]> {
  return withClient(port, async (c) => {
    const keys = [...writers.logs.keys()];
    const got = await c.mget(keys);
    return keys.flatMap((key, i) => writers.check(key, got[i] ?? null, true) ?? []);
  });
}

/** Every key and value on a node. */
async function dump(port: number): Promise<Map<string, string>> {
  return withClient(port, async (c) => {
    const keys: string[] = [];
    for await (const k of c.keys({ match: '*' })) keys.push(k);
    const values = keys.length === 0 ? [] : await c.mget(keys);
    return new Map(keys.map((k, i) => [k, values[i] ?? '(gone)']));
  });
}

function differences(what: string, primary: Map<string, string>, other: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [k, v] of primary)
    if (other.get(k) !== v)
      out.push(`${what}: ${k} is ${JSON.stringify(other.get(k))}, primary has ${JSON.stringify(v)}`);
  for (const k of other.keys())
    if (!primary.has(k)) out.push(`${what}: ${k} is there, the primary has no such key`);
  return out;
}

interface CycleRow {
  cycle: number;
  action: string;
  promoted: string;
  /** Log ends of the two replicas when the primary died (records). */
  ends: string;
  recoveryMs: number;
  acks: number;
  violations: number;
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  const rand = mulberry32(o.seed);
  const started = Date.now();
  const root = mkdtempSync(join(tmpdir(), 'segkv-torture-replication-'));
  const log = (m: string) =>
    process.stderr.write(`torture:replication ${((Date.now() - started) / 1000).toFixed(1)}s ${m}\n`);
  const nodes = new Map<string, NodeProcess>();
  const violations: string[] = [];
  const rows: CycleRow[] = [];
  const start = async (name: string, primaryPort?: number) => {
    const spec: NodeSpec = { name, dir: join(root, name) };
    const more = primaryPort === undefined ? [] : ['--replica-of', `127.0.0.1:${primaryPort}`];
    nodes.set(name, await spawnNode(spec, [...NODE_FLAGS, ...more]));
  };
  let primary = 'n1';
  const portOf = (name: string) => nodes.get(name)!.port;
  const replicas = () => [...nodes.keys()].filter((n) => n !== primary);
  const writers = new ClusterWriters(() => primaryTarget(() => portOf(primary)), {
    writers: WRITERS,
    keysPerWriter: KEYS_PER_WRITER,
  });

  /** Waits until both replicas hold every write the primary acknowledged (a marker write, WAIT 2). */
  const caughtUp = async (cycle: number) => {
    const deadline = Date.now() + RECOVERY_TIMEOUT_MS;
    for (;;) {
      const n = await withClient(portOf(primary), async (c) => {
        await c.set('marker', String(cycle));
        return c.wait(2, 2_000);
      }).catch(() => 0);
      if (n === 2) return;
      if (Date.now() > deadline)
        throw new Error(
          `cycle ${cycle}: the replicas did not catch up with ${primary} within ${RECOVERY_TIMEOUT_MS} ms`,
        );
      await sleep(100);
    }
  };

  log(`seed ${o.seed}`);
  try {
    await start('n1');
    await start('n2', portOf('n1'));
    await start('n3', portOf('n1'));
    await caughtUp(-1);
    writers.start();
    for (let cycle = 0; cycle < o.cycles; cycle++) {
      if (Date.now() - started > o.maxSeconds * 1000) {
        log(`time budget of ${o.maxSeconds} s spent after ${cycle} cycles`);
        break;
      }
      const acksBefore = writers.acks;
      const killPrimary = cycle % 3 !== 2;
      const compactFirst = rand() < 1 / 3;
      // Half the cycles let one replica fall behind first (SIGSTOP, then SIGCONT just before the kill), so
      // the replicas' ends differ and the one behind must catch up from the promoted one.
      const lagging = rand() < 0.5 ? replicas()[Math.floor(rand() * 2)]! : undefined;
      await sleep(300 + Math.floor(rand() * 600));
      if (lagging !== undefined) nodes.get(lagging)!.proc.kill('SIGSTOP');
      await sleep(200 + Math.floor(rand() * 600));
      if (lagging !== undefined) nodes.get(lagging)!.proc.kill('SIGCONT');
      if (compactFirst) {
        void withClient(portOf(primary), (c) => c.compact()).catch(() => {});
        await sleep(Math.floor(rand() * 25));
      }
      const victim = killPrimary ? primary : replicas()[Math.floor(rand() * 2)]!;
      await nodes.get(victim)!.kill();
      const at = Date.now();
      let ends = '';
      if (killPrimary) {
        const survivors = replicas().filter((n) => n !== victim);
        const roles = await Promise.all(survivors.map((n) => withClient(portOf(n), (c) => c.role())));
        ends = survivors.map((n, i) => `${n} ${roles[i]!.end}`).join(', ');
        const best = roles[0]!.end >= roles[1]!.end ? survivors[0]! : survivors[1]!;
        const other = survivors.find((n) => n !== best)!;
        await withClient(portOf(best), (c) => c.replicaOf(null));
        primary = best; // the writers move over
        await withClient(portOf(other), (c) => c.replicaOf({ host: '127.0.0.1', port: portOf(best) }));
      }
      await start(victim, portOf(primary));
      await writers.stop().catch(() => {}); // a writer's unexpected error is a violation, below
      await caughtUp(cycle);
      const recoveryMs = Date.now() - at;
      const found = await verify(writers, portOf(primary));
      const image = await dump(portOf(primary));
      for (const r of replicas()) found.push(...differences(r, image, await dump(portOf(r))));
      for (const v of found) violations.push(`cycle ${cycle + 1}: ${v}`);
      if (writers.unexpected !== undefined)
        violations.push(`cycle ${cycle + 1}: a writer failed: ${writers.unexpected.message}`);
      writers.unexpected = undefined;
      const action =
        `${lagging === undefined ? '' : `${lagging} behind, `}` +
        `SIGKILL ${killPrimary ? 'primary' : 'replica'} ${victim}${compactFirst ? ' after COMPACT' : ''}`;
      rows.push({
        cycle,
        action,
        promoted: killPrimary ? primary : '-',
        ends: ends || '-',
        recoveryMs,
        acks: writers.acks - acksBefore,
        violations: found.length,
      });
      log(
        `cycle ${cycle + 1}/${o.cycles}: ${action}: whole again in ${recoveryMs} ms, ${image.size} keys equal on 3 nodes`,
      );
      if (violations.length > 0) break;
      writers.start();
    }
    await writers.stop().catch(() => {});

    const header = [
      'cycle',
      'action',
      'promoted',
      'replica ends at the kill',
      'whole again ms',
      'acks',
      'violations',
    ];
    const body = rows.map((r) => [
      String(r.cycle + 1),
      r.action,
      r.promoted,
      r.ends,
      String(r.recoveryMs),
      String(r.acks),
      String(r.violations),
    ]);
    for (const v of violations.slice(0, 50)) process.stdout.write(`VIOLATION ${v}\n`);
    const codes = [...writers.codes].map(([c, n]) => `${c} ${n}`).join(', ') || 'none';
    process.stdout.write(
      `\ntorture:replication summary (primary + 2 replicas, --min-replicas-ack 1, seed ${o.seed}, ` +
        `${((Date.now() - started) / 1000).toFixed(1)} s)\n${markdownTable([header, ...body])}\n` +
        `writes acknowledged ${writers.acks}, not acknowledged ${writers.failed} (${codes}); ` +
        `keys checked ${writers.logs.size}; violations ${violations.length}\n` +
        'checked after every cycle: every acknowledged write on the primary, no deleted key back, no value ' +
        'never written, and both replicas equal to the primary in keys and values.\n',
    );
    process.exitCode = violations.length > 0 ? 1 : 0;
  } catch (err) {
    process.exitCode = 1;
    throw err;
  } finally {
    await writers.stop().catch(() => {});
    for (const [name, n] of nodes) {
      await n.kill();
      writeFileSync(join(root, `${name}.log`), n.stderr());
    }
    if (process.exitCode === 1) process.stderr.write(`torture:replication: data and logs kept in ${root}\n`);
    else rmSync(root, { recursive: true, force: true });
  }
}

runHarness('torture:replication', main);
