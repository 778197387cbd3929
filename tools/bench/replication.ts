/**
 * `npm run bench:replication`: segkv replication against Redis 7 replication,
 * side by side in one run, same keys and values (issue 12, DESIGN.md §7).
 *
 *   throughput  kv-bench -t set (-c 50 -P 16 -d 100 over 100,000 keys) on a
 *               primary with 0, 1 and 2 asynchronous replicas; then with a
 *               synchronous ack: segkv --min-replicas-ack 1 against Redis
 *               SET + `WAIT 1 0` per pipeline (kv-bench --wait 1), and both
 *               with SET + WAIT. Fresh processes for every run, each run
 *               after --warmup seconds (default 1) of the same load not
 *               recorded, both stores alike, as bench:server does (a cold
 *               kv-server counted its JIT compilation and its empty
 *               keydir's inserts: 4.0-4.9 µs of CPU per SET in its first
 *               2 s, 2.4-3.4 after, Redis 2.6-3.4 in both); --repeat
 *               runs alternating which store goes first; medians.
 *   lag         during the 1- and 2-replica runs, offsets polled every
 *               --lag-poll-ms: records and ms behind (replication-runs.ts).
 *   resync      --resync-keys keys (16 B keys, 100 B values) on a primary,
 *               then an empty server told REPLICAOF: wall time until it has
 *               the whole log, and the primary's RSS growth meanwhile.
 *
 * Every server: segkv --fsync interval, Redis appendonly yes with appendfsync
 * everysec, replicas included; Redis primaries with
 * repl-diskless-sync-delay 0 (Debian's 5 s wait for more replicas would
 * only add to its resync time). The servers, the load generator and the
 * poller share the machine: figures are relative, hence the ratios.
 * Results: tools/bench/results/replication-<date>.json.
 */
import { spawnSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import {
  benchArgs,
  commandLine,
  fmt,
  formatTable,
  logLine,
  median,
  printTargets,
  runInfo,
  runMain,
  type Target,
  TempRoot,
  UsageError,
  writeResults,
} from './lib.js';
import {
  type LagStats,
  live,
  type ResyncResult,
  resyncRun,
  type SetRunResult,
  setRun,
  startTopology,
} from './replication-runs.js';
import { redisBinary, type Store } from './server-procs.js';

const HELP = `usage: npm run bench:replication -- [options]

  --duration S        seconds per SET run (default 5; quick 2)
  --warmup S          seconds of the same load before each SET run, not recorded (default 1)
  --repeat N          runs of each row, medians shown (default 3; quick 1)
  --clients N         kv-bench -c (default 50)
  --pipeline N        kv-bench -P (default 16)
  --value-bytes N     kv-bench -d (default 100)
  --keys N            keyspace of the SET runs, kv-bench -r (default 100000)
  --lag-poll-ms N     offset poll interval for the lag figures (default 10)
  --resync-keys N     keys on the primary for the full resync (default 5000000; quick 200000)
  --no-throughput     skip the SET runs and lag
  --no-resync         skip the full resync
  --redis PATH        redis-server binary (default: the one on PATH, installed with apt-get if missing)
  --quick             CI smoke: --duration 2 --repeat 1 --resync-keys 200000 (< 2 min)
  --out FILE          JSON results path (default tools/bench/results/replication-<date>.json)
  --help              this text
`;

export interface Config {
  durationS: number;
  warmupS: number;
  repeat: number;
  clients: number;
  pipeline: number;
  valueBytes: number;
  keys: number;
  lagPollMs: number;
  resyncKeys: number;
  throughput: boolean;
  resync: boolean;
  redis: string | undefined;
  out: string | undefined;
  quick: boolean;
}

/** The command line of bench:replication (exported for test/tools). */
export function parseConfig(argv: string[]): Config {
  const a = benchArgs(argv, HELP, {
    duration: { type: 'string' },
    warmup: { type: 'string' },
    repeat: { type: 'string' },
    clients: { type: 'string' },
    pipeline: { type: 'string' },
    'value-bytes': { type: 'string' },
    keys: { type: 'string' },
    'lag-poll-ms': { type: 'string' },
    'resync-keys': { type: 'string' },
    'no-throughput': { type: 'boolean' },
    'no-resync': { type: 'boolean' },
    redis: { type: 'string' },
    quick: { type: 'boolean' },
    out: { type: 'string' },
  });
  const quick = a.flag('quick');
  const durationText = a.string('duration');
  const durationS = durationText === undefined ? (quick ? 2 : 5) : Number(durationText);
  if (!(durationS > 0) || !Number.isFinite(durationS))
    throw new UsageError(`--duration needs seconds > 0, got ${durationText}`);
  const warmupText = a.string('warmup');
  const warmupS = warmupText === undefined ? 1 : Number(warmupText);
  if (!(warmupS >= 0) || !Number.isFinite(warmupS))
    throw new UsageError(`--warmup needs seconds >= 0, got ${warmupText}`);
  return {
    durationS,
    warmupS,
    repeat: a.int('repeat', quick ? 1 : 3, 1),
    clients: a.int('clients', 50, 1),
    pipeline: a.int('pipeline', 16, 1),
    valueBytes: a.int('value-bytes', 100, 1),
    keys: a.int('keys', 100_000, 1),
    lagPollMs: a.int('lag-poll-ms', 10, 1),
    resyncKeys: a.int('resync-keys', quick ? 200_000 : 5_000_000, 1),
    throughput: !a.flag('no-throughput'),
    resync: !a.flag('no-resync'),
    redis: a.string('redis'),
    out: a.string('out'),
    quick,
  };
}

/** One row of the throughput table: the same replicas for both stores, and how each acknowledges. */
interface Scenario {
  id: string;
  label: string;
  replicas: number;
  /** kv-server flags of the segkv primary. */
  segkvPrimary: string[];
  /** kv-bench --wait for each store. */
  wait: Partial<Record<Store, number>>;
  /** Lag is polled in this row. */
  lag: boolean;
  /** Carries the ≥ 1.0× Redis target. */
  target: boolean;
  /** Left out of --quick (for information only). */
  quick: boolean;
}

const SCENARIOS: readonly Scenario[] = [
  {
    id: 'async-0',
    label: '0 replicas',
    replicas: 0,
    segkvPrimary: [],
    wait: {},
    lag: false,
    target: true,
    quick: true,
  },
  {
    id: 'async-1',
    label: '1 replica, async',
    replicas: 1,
    segkvPrimary: [],
    wait: {},
    lag: true,
    target: true,
    quick: true,
  },
  {
    id: 'async-2',
    label: '2 replicas, async',
    replicas: 2,
    segkvPrimary: [],
    wait: {},
    lag: true,
    target: true,
    quick: true,
  },
  {
    id: 'ack-1',
    label: '1 replica, segkv --min-replicas-ack 1 / Redis SET+WAIT 1 0',
    replicas: 1,
    segkvPrimary: ['--min-replicas-ack', '1'],
    wait: { redis: 1 },
    lag: false,
    target: true,
    quick: true,
  },
  {
    id: 'wait-1',
    label: '1 replica, SET+WAIT 1 0 per pipeline (both)',
    replicas: 1,
    segkvPrimary: [],
    wait: { segkv: 1, redis: 1 },
    lag: false,
    target: false,
    quick: false,
  },
];

function scenarios(cfg: Config): readonly Scenario[] {
  return cfg.quick ? SCENARIOS.filter((s) => s.quick) : SCENARIOS;
}

interface RowStats {
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  runs: { opsPerSec: number; p50Ms: number; p99Ms: number; errors: number; firstError?: string }[];
  /** Per run, per replica: lag figures. */
  lag: LagStats[][];
  /** Medians over the runs: CPU µs per SET of the primary, and of a replica (mean over its replicas). */
  cpuUsPerSet: { primary: number; replica: number };
}

interface Row {
  id: string;
  label: string;
  replicas: number;
  segkv: RowStats;
  redis: RowStats | null;
  opsRatio: number | null;
}

const log = (msg: string) => logLine('bench:replication', msg);
const MiB = 2 ** 20;
const ratioText = (x: number | null | undefined) =>
  x === null || x === undefined || Number.isNaN(x) ? '-' : `${x.toFixed(2)}x`;

function rowStats(runs: SetRunResult[]): RowStats {
  const r = runs.map((x) => x.result);
  return {
    opsPerSec: Math.round(median(r.map((x) => x.opsPerSec))),
    p50Ms: median(r.map((x) => x.latencyMs.p50)),
    p99Ms: median(r.map((x) => x.latencyMs.p99)),
    runs: r.map((x) => ({
      opsPerSec: x.opsPerSec,
      p50Ms: x.latencyMs.p50,
      p99Ms: x.latencyMs.p99,
      errors: x.errors,
      ...(x.firstError !== undefined && { firstError: x.firstError }),
    })),
    lag: runs.map((x) => x.lag),
    cpuUsPerSet: {
      primary: median(runs.map((x) => x.cpuUsPerSet.primary)),
      replica: runs[0]!.cpuUsPerSet.replicas.length
        ? median(
            runs.map(
              (x) => x.cpuUsPerSet.replicas.reduce((a, b) => a + b, 0) / x.cpuUsPerSet.replicas.length,
            ),
          )
        : Number.NaN,
    },
  };
}

/** Median over the runs of one replica's lag figure. */
function lagMedian(s: RowStats, replica: number, pick: (l: LagStats) => number): number {
  const xs = s.lag
    .map((l) => l[replica])
    .filter((l) => l !== undefined)
    .map(pick);
  return xs.length ? median(xs) : Number.NaN;
}

async function throughput(cfg: Config, root: TempRoot, redisBin: string | undefined): Promise<Row[]> {
  const stores: Store[] = redisBin ? ['segkv', 'redis'] : ['segkv'];
  const runs = new Map<string, SetRunResult[]>();
  for (let rep = 0; rep < cfg.repeat; rep++) {
    const order = rep % 2 === 0 ? stores : [...stores].reverse();
    for (const sc of scenarios(cfg)) {
      for (const store of order) {
        const t = await startTopology(store, redisBin ?? '', root, sc.replicas, sc.segkvPrimary);
        try {
          const r = await setRun(t, {
            clients: cfg.clients,
            pipeline: cfg.pipeline,
            valueBytes: cfg.valueBytes,
            keys: cfg.keys,
            durationS: cfg.durationS,
            warmupS: cfg.warmupS,
            seed: rep + 1,
            wait: sc.wait[store],
            lagPollMs: sc.lag ? cfg.lagPollMs : 0,
          });
          const key = `${sc.id} ${store}`;
          runs.set(key, [...(runs.get(key) ?? []), r]);
          const lag = r.lag[0];
          log(
            `run ${rep + 1}/${cfg.repeat} ${sc.label}: ${store} ${fmt(r.result.opsPerSec)} SET/s, p99 ${r.result.latencyMs.p99} ms` +
              (r.result.errors ? `, ${r.result.errors} errors (${r.result.firstError})` : '') +
              (lag ? `; lag p99 ${fmt(lag.records.p99)} records, ${lag.ms.p99.toFixed(1)} ms` : ''),
          );
        } finally {
          await t.stop();
        }
      }
    }
  }
  return scenarios(cfg).map((sc) => {
    const segkv = rowStats(runs.get(`${sc.id} segkv`)!);
    const redis = redisBin ? rowStats(runs.get(`${sc.id} redis`)!) : null;
    return {
      id: sc.id,
      label: sc.label,
      replicas: sc.replicas,
      segkv,
      redis,
      opsRatio: redis ? segkv.opsPerSec / redis.opsPerSec : null,
    };
  });
}

function throughputTable(rows: Row[]): string {
  return formatTable(
    ['SET', 'segkv ops/s', 'redis ops/s', 'ratio', 'segkv p99 ms', 'redis p99 ms'],
    rows.map((r) => [
      r.label,
      fmt(r.segkv.opsPerSec),
      r.redis ? fmt(r.redis.opsPerSec) : '-',
      ratioText(r.opsRatio),
      r.segkv.p99Ms.toFixed(2),
      r.redis ? r.redis.p99Ms.toFixed(2) : '-',
    ]),
    1,
  );
}

function cpuTable(rows: Row[]): string {
  const us = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? '-' : x.toFixed(1));
  return formatTable(
    ['CPU µs per SET', 'segkv primary', 'redis primary', 'segkv replica', 'redis replica'],
    rows.map((r) => [
      r.label,
      us(r.segkv.cpuUsPerSet.primary),
      us(r.redis?.cpuUsPerSet.primary),
      us(r.segkv.cpuUsPerSet.replica),
      us(r.redis?.cpuUsPerSet.replica),
    ]),
    1,
  );
}

function lagTable(rows: Row[]): string {
  const body: string[][] = [];
  for (const r of rows.filter((x) => SCENARIOS.find((s) => s.id === x.id)?.lag)) {
    for (let i = 0; i < r.replicas; i++) {
      for (const [store, s] of [
        ['segkv', r.segkv],
        ['redis', r.redis],
      ] as const) {
        if (!s) continue;
        body.push([
          `${r.label}, replica ${i + 1}`,
          store,
          fmt(lagMedian(s, i, (l) => l.records.p50)),
          fmt(lagMedian(s, i, (l) => l.records.p99)),
          lagMedian(s, i, (l) => l.ms.p50).toFixed(1),
          lagMedian(s, i, (l) => l.ms.p99).toFixed(1),
        ]);
      }
    }
  }
  return formatTable(
    ['lag under SET load', 'store', 'records p50', 'records p99', 'ms p50', 'ms p99'],
    body,
    2,
  );
}

function resyncTable(seg: ResyncResult, red: ResyncResult | undefined): string {
  const mib = (b: number) => `${(b / MiB).toFixed(0)} MiB`;
  const rows = [
    [
      'wall time, REPLICAOF → caught up',
      `${(seg.ms / 1000).toFixed(2)} s`,
      red ? `${(red.ms / 1000).toFixed(2)} s` : '-',
      red ? ratioText(seg.ms / red.ms) : '-',
    ],
    [
      "wall time, REPLICAOF → in the replica's log/AOF",
      `${(seg.persistedMs / 1000).toFixed(2)} s`,
      red ? `${(red.persistedMs / 1000).toFixed(2)} s` : '-',
      red ? ratioText(seg.persistedMs / red.persistedMs) : '-',
    ],
    ['primary RSS before', mib(seg.rssBeforeBytes), red ? mib(red.rssBeforeBytes) : '-', ''],
    ['primary RSS peak during', mib(seg.rssPeakBytes), red ? mib(red.rssPeakBytes) : '-', ''],
    [
      'primary RSS growth',
      `${(seg.rssGrowth * 100).toFixed(1)} %`,
      red ? `${(red.rssGrowth * 100).toFixed(1)} %` : '-',
      '',
    ],
    ['fork child private memory, peak', '-', red ? mib(red.childPrivatePeakBytes) : '-', ''],
    [
      'CPU time during it: primary (Redis: + fork)',
      `${(seg.cpuMs.primary / 1000).toFixed(2)} s`,
      red ? `${(red.cpuMs.primary / 1000).toFixed(2)} s` : '-',
      '',
    ],
    [
      'CPU time during it: replica',
      `${(seg.cpuMs.replica / 1000).toFixed(2)} s`,
      red ? `${(red.cpuMs.replica / 1000).toFixed(2)} s` : '-',
      '',
    ],
    ['keys on the replica after', fmt(seg.replicaKeys), red ? fmt(red.replicaKeys) : '-', ''],
  ];
  return formatTable([`full resync, ${fmt(seg.keys)} keys`, 'segkv', 'redis', 'ratio'], rows, 1);
}

async function main(): Promise<void> {
  const cfg = parseConfig(process.argv.slice(2));
  const started = new Date();
  const root = new TempRoot('segkv-bench-replication-');
  root.onCleanup(() => {
    for (const s of live) s.killNow();
  });
  const redisBin = redisBinary(cfg.redis, 'bench:replication');
  const redisVersion = redisBin
    ? (/v=([\d.]+)/.exec(spawnSync(redisBin, ['--version'], { encoding: 'utf8' }).stdout)?.[1] ?? '?')
    : null;
  const loadBefore = loadavg();
  const rows = cfg.throughput ? await throughput(cfg, root, redisBin) : [];
  let resync: { segkv: ResyncResult; redis: ResyncResult | undefined } | undefined;
  if (cfg.resync) {
    const segkv = await resyncRun('segkv', '', root, cfg.resyncKeys, cfg.valueBytes, log);
    log(`segkv: full resync of ${fmt(cfg.resyncKeys)} keys in ${(segkv.ms / 1000).toFixed(2)} s`);
    const redis = redisBin
      ? await resyncRun('redis', redisBin, root, cfg.resyncKeys, cfg.valueBytes, log)
      : undefined;
    if (redis) log(`redis: full resync of ${fmt(cfg.resyncKeys)} keys in ${(redis.ms / 1000).toFixed(2)} s`);
    resync = { segkv, redis };
  }
  const loadAfter = loadavg();
  const load = `kv-bench -t set -c ${cfg.clients} -P ${cfg.pipeline} -d ${cfg.valueBytes} -r ${cfg.keys} --duration ${cfg.durationS} after ${cfg.warmupS} s of warm-up`;
  const out = [
    `bench:replication — ${started.toISOString()} — ${cpus()[0]?.model ?? '?'}, ${cpus().length} cores, node ${process.version}, redis ${redisVersion ?? 'skipped'}`,
    `load average ${loadBefore.map((x) => x.toFixed(1)).join(' ')} → ${loadAfter.map((x) => x.toFixed(1)).join(' ')}`,
  ];
  if (rows.length) {
    out.push('', `${load}, ${cfg.repeat} run(s) per row (median); fsync interval / appendfsync everysec`);
    out.push(
      throughputTable(rows),
      '',
      'CPU time (user + system, /proc/PID/stat) per SET, median over the runs',
    );
    out.push(cpuTable(rows), '', `lag: offsets polled every ${cfg.lagPollMs} ms`, lagTable(rows));
  }
  if (resync) out.push('', resyncTable(resync.segkv, resync.redis));
  process.stdout.write(`${out.join('\n')}\n`);

  const targets: Target[] = [];
  for (const r of rows.filter((x) => SCENARIOS.find((s) => s.id === x.id)?.target)) {
    targets.push({
      target: `SET ops/s ≥ 1.0× Redis, ${r.label}`,
      measured: r.redis
        ? `${fmt(r.segkv.opsPerSec)} vs ${fmt(r.redis.opsPerSec)} (${ratioText(r.opsRatio)})`
        : 'no Redis to compare',
      met: r.opsRatio !== null && r.opsRatio >= 1,
    });
  }
  if (resync) {
    const { segkv, redis } = resync;
    targets.push({
      target: `full resync of ${fmt(segkv.keys)} keys ≤ Redis's time`,
      measured: redis
        ? `${(segkv.ms / 1000).toFixed(2)} vs ${(redis.ms / 1000).toFixed(2)} s (${ratioText(segkv.ms / redis.ms)})`
        : 'no Redis to compare',
      met: redis !== undefined && segkv.ms <= redis.ms,
    });
    targets.push({
      target: 'primary RSS growth during the full resync ≤ 10%',
      measured: `${(segkv.rssGrowth * 100).toFixed(1)} % (Redis ${redis ? `${(redis.rssGrowth * 100).toFixed(1)} % + fork child ${(redis.childPrivatePeakBytes / MiB).toFixed(0)} MiB` : '-'})`,
      met: segkv.rssGrowth <= 0.1 && segkv.replicaKeys === segkv.keys,
    });
  }
  printTargets(12, targets);
  const file = writeResults(
    'replication',
    started,
    {
      ...runInfo(commandLine('bench:replication'), started),
      machine: {
        cpu: cpus()[0]?.model ?? '?',
        cores: cpus().length,
        redis: redisVersion,
        loadBefore,
        loadAfter,
      },
      config: cfg,
      load,
      rows,
      resync: resync ?? null,
      targets,
    },
    cfg.out,
  );
  process.stdout.write(`results: ${file}\n`);
}

runMain(main);
