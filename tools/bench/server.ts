/**
 * `npm run bench:server`: kv-server against redis-server, side by side, in one
 * run (issue 6, DESIGN.md §7).
 *
 *   throughput  per durability pair (segkv --fsync interval vs Redis AOF
 *               appendfsync everysec; --fsync always vs appendfsync always),
 *               fresh servers for every repeat with --keys keys written
 *               first, then kv-bench
 *               (a child process: the same load generator for both, see
 *               tools/lib/load.ts) for set, get and mixed at -c 50 -d 100,
 *               -P 1 and -P 16, each run after --warmup seconds (default 1) of
 *               the same load not recorded, both stores alike (kv-bench is a
 *               fresh process per run and the SET row is the first after
 *               the prefill: a cold start counted kv-server's JIT
 *               compilation, BENCHMARKS.md); --repeat runs each, alternating which store
 *               goes first; medians of ops/s and p99 with their ratio, and
 *               of the server's CPU per request (user + system of all its
 *               threads over the run / requests answered: what a request
 *               costs each server, apart from how much of the 2 cores the
 *               scheduler gave it).
 *   memory      a fresh server of each, keys written up to each of --sizes,
 *               VmRSS from /proc/PID/status after each size, once idle and
 *               settled (see settledRss; the JSON also has it 1.5 s after
 *               the load).
 *   restart     that server stopped (SIGTERM) and started again on its data:
 *               time from spawn until it answers PING with all data loaded
 *               (Redis: until INFO persistence says loading:0).
 *
 * Redis runs with --save '' (no RDB) and appendonly yes; both keep their
 * default background work (Redis's automatic AOF rewrite in a forked child,
 * segkv's automatic compaction and hint writing), as users run them. The servers and the load generator share the machine: figures are
 * relative, which is why each table row carries the ratio segkv/Redis.
 * Results: tools/bench/results/server-<date>.json and .svg (grouped bars).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import type { TestResult } from '../lib/load.js';
import {
  benchArgs,
  fmt,
  formatTable,
  logLine,
  median,
  runMain,
  TempRoot,
  UsageError,
  writeResults,
} from './lib.js';
import { freePort } from './redis-peer.js';
import { serverChart } from './server-chart.js';
import {
  kvBench,
  type Mode,
  redisBinary,
  ServerProc,
  type Store,
  settledRss,
  upkeepDuring,
} from './server-procs.js';

const HELP = `usage: npm run bench:server -- [options]

  --duration S      seconds per kv-bench run (default 5)
  --warmup S        kv-bench --warmup: seconds of the same load before each run's measured
                    part, unrecorded, for both servers alike (default 1; 0 for none)
  --requests N      requests per run instead of --duration (quick: 2000)
  --repeat N        runs of each row, medians shown (default 3)
  --keys N          keys written before the throughput runs, and -r (default 100000)
  --clients N       kv-bench -c (default 50)
  --value-bytes N   kv-bench -d (default 100)
  --pipelines LIST  kv-bench -P values (default 1,16)
  --workloads LIST  kv-bench -t values (default set,get,mixed)
  --modes LIST      durability pairs: interval (everysec), always (default interval,always)
  --sizes LIST      key counts for the memory and restart figures (default 1000000,5000000)
  --no-memory       skip memory and restart
  --no-throughput   skip the throughput rows (memory and restart only)
  --redis PATH      redis-server binary (default: the one on PATH, installed with apt-get if missing)
  --quick           CI smoke: 2000 requests per run, 1 run, --sizes 100000 (< 60 s)
  --timelines DIR   also write each kv-bench run's per-request timeline (kv-bench --timeline)
                    to DIR/<mode>-P<P>-<workload>-<store>-<run>.csv
  --out FILE        JSON results path (default tools/bench/results/server-<date>.json; the SVG beside it)
  --help            this text
`;

interface Config {
  durationS: number;
  warmupS: number;
  requests: number;
  repeat: number;
  keys: number;
  clients: number;
  valueBytes: number;
  pipelines: number[];
  workloads: string[];
  modes: Mode[];
  sizes: number[];
  memory: boolean;
  throughput: boolean;
  redis: string | undefined;
  out: string | undefined;
  timelines: string | undefined;
  quick: boolean;
}

function list(v: string | undefined, name: string): string[] {
  const items = (v ?? '').split(',').filter((s) => s !== '');
  if (items.length === 0) throw new UsageError(`${name} needs a comma-separated list`);
  return items;
}

function int(v: string | undefined, name: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`${name} needs a positive integer, got ${v}`);
  return n;
}

function parseArgs(argv: string[]): Config {
  const a = benchArgs(argv, HELP, {
    duration: { type: 'string' },
    warmup: { type: 'string' },
    requests: { type: 'string' },
    repeat: { type: 'string' },
    keys: { type: 'string' },
    clients: { type: 'string' },
    'value-bytes': { type: 'string' },
    pipelines: { type: 'string' },
    workloads: { type: 'string' },
    modes: { type: 'string' },
    sizes: { type: 'string' },
    'no-memory': { type: 'boolean' },
    'no-throughput': { type: 'boolean' },
    redis: { type: 'string' },
    out: { type: 'string' },
    timelines: { type: 'string' },
    quick: { type: 'boolean' },
  });
  const intOf = (name: string, fallback: number) => {
    const v = a.string(name);
    return v === undefined ? fallback : int(v, `--${name}`);
  };
  const listOf = (name: string) => {
    const v = a.string(name);
    return v === undefined ? undefined : list(v, `--${name}`);
  };
  const durationS = Number(a.string('duration') ?? 5);
  if (!(durationS > 0)) throw new UsageError('--duration needs seconds > 0');
  const modes = (listOf('modes') ?? ['interval', 'always']).map((m) => {
    if (m !== 'interval' && m !== 'always')
      throw new UsageError(`--modes takes interval and always, got ${m}`);
    return m;
  });
  const sizes = listOf('sizes')?.map((s) => int(s, '--sizes'));
  const warmupS = Number(a.string('warmup') ?? 1);
  if (!(warmupS >= 0) || !Number.isFinite(warmupS)) throw new UsageError('--warmup needs seconds >= 0');
  const c: Config = {
    durationS,
    warmupS,
    requests: intOf('requests', 0),
    repeat: intOf('repeat', 3),
    keys: intOf('keys', 100_000),
    clients: intOf('clients', 50),
    valueBytes: intOf('value-bytes', 100),
    pipelines: listOf('pipelines')?.map((s) => int(s, '--pipelines')) ?? [1, 16],
    workloads: listOf('workloads') ?? ['set', 'get', 'mixed'],
    modes,
    sizes: sizes ?? [1_000_000, 5_000_000],
    memory: !a.flag('no-memory'),
    throughput: !a.flag('no-throughput'),
    redis: a.string('redis'),
    out: a.string('out'),
    timelines: a.string('timelines'),
    quick: a.flag('quick'),
  };
  const sizesGiven = sizes !== undefined;
  if (c.quick) {
    if (c.requests === 0) c.requests = 2000;
    c.repeat = 1;
    c.keys = Math.min(c.keys, 10_000);
    if (!sizesGiven) c.sizes = [100_000];
  }
  c.sizes.sort((a, b) => a - b);
  return c;
}

const log = (msg: string) => logLine('bench:server', msg);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One measured row: medians over the repeats. */
export interface ThroughputRow {
  mode: Mode;
  pipeline: number;
  workload: string;
  segkv: RowStats;
  redis: RowStats | null;
  /** segkv / Redis. */
  opsRatio: number | null;
  p99Ratio: number | null;
  /** segkv / Redis, server CPU per request (RowStats.cpuUsPerRequest). */
  cpuRatio: number | null;
}

export interface RowStats {
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /**
   * The server process's CPU (user + system, all threads, cpuMs) per
   * answered request during the run, in µs: what a request costs the
   * server, whatever share of the 2 cores it got. The load generator's
   * CPU is not in it.
   */
  cpuUsPerRequest: number;
  runs: {
    opsPerSec: number;
    p50Ms: number;
    p99Ms: number;
    p999Ms: number;
    maxMs: number;
    errors: number;
    cpuUsPerRequest: number;
    /**
     * The server's log upkeep during the run (warm-up included): 'seal' (segkv's
     * active segment filled, 64 MiB by default, and was sealed: its hint and index
     * written), 'compaction' (segkv), 'aof-rewrite' (Redis). The rows run in order
     * on the same servers, so the first seal and compaction land in whichever row
     * the writes before reach 64 MiB (interval: usually mixed P1; BENCHMARKS.md).
     */
    upkeep: string[];
  }[];
}

/** ' [upkeep: segkv run 2 seal, compaction; redis run 1 aof-rewrite]', or '' if no run held any. */
export function upkeepNote(row: { segkv: RowStats; redis: RowStats | null }): string {
  const parts: string[] = [];
  for (const [name, st] of [
    ['segkv', row.segkv],
    ['redis', row.redis],
  ] as const) {
    if (!st) continue;
    const runs = st.runs.flatMap((r, i) =>
      r.upkeep.length > 0 ? [`run ${i + 1} ${r.upkeep.join(', ')}`] : [],
    );
    if (runs.length > 0) parts.push(`${name} ${runs.join('; ')}`);
  }
  return parts.length > 0 ? ` [upkeep: ${parts.join('; ')}]` : '';
}

/** One kv-bench run against one server, with the server's CPU per request during it. */
interface Run {
  result: TestResult;
  cpuUsPerRequest: number;
  /** The server's log upkeep during the run (warm-up included): upkeepDuring. */
  upkeep: string[];
}

function stats(runs: Run[]): RowStats {
  return {
    opsPerSec: Math.round(median(runs.map((r) => r.result.opsPerSec))),
    p50Ms: median(runs.map((r) => r.result.latencyMs.p50)),
    p99Ms: median(runs.map((r) => r.result.latencyMs.p99)),
    cpuUsPerRequest: median(runs.map((r) => r.cpuUsPerRequest)),
    runs: runs.map(({ result: r, cpuUsPerRequest, upkeep }) => ({
      opsPerSec: r.opsPerSec,
      p50Ms: r.latencyMs.p50,
      p99Ms: r.latencyMs.p99,
      p999Ms: r.latencyMs.p999,
      maxMs: r.latencyMs.max,
      errors: r.errors,
      cpuUsPerRequest,
      upkeep,
    })),
  };
}

export interface MemoryResult {
  store: Store;
  /**
   * `bytes`: settled (see settledRss); `afterLoadBytes`: 1.5 s after the last
   * write; `fileBytes`: the file pages of `bytes` (binary and libraries, RssFile).
   */
  rssBytes: { keys: number; bytes: number; afterLoadBytes: number; fileBytes: number }[];
  restart: { keys: number; ms: number; rssBytes: number };
}

async function throughput(
  cfg: Config,
  root: TempRoot,
  redisBin: string | undefined,
  live: Set<ServerProc>,
): Promise<ThroughputRow[]> {
  const rows: ThroughputRow[] = [];
  const stores: Store[] = redisBin ? ['segkv', 'redis'] : ['segkv'];
  for (const mode of cfg.modes) {
    // runs[P][workload][store]: one result per repeat.
    const runs = new Map<string, Run[]>();
    const cell = (p: number, w: string, s: Store) => {
      const k = `${p} ${w} ${s}`;
      if (!runs.has(k)) runs.set(k, []);
      return runs.get(k)!;
    };
    for (let rep = 0; rep < cfg.repeat; rep++) {
      // Fresh servers (new directory, keys written again) for every repeat: one process can be
      // systematically faster or slower than the next (placement, JIT), so repeats must not share one.
      const servers = new Map<Store, ServerProc>();
      for (const s of stores) {
        const dir = root.dir(`${s}-${mode}-${rep}`);
        const srv = await ServerProc.start(s, redisBin ?? '', dir, mode, await freePort());
        live.add(srv);
        servers.set(s, srv);
        await kvBench(s, srv.port, ['--prefill', '-r', String(cfg.keys), '-t', 'ping', '-n', '1']);
      }
      log(`${mode}, run ${rep + 1}/${cfg.repeat}: fresh servers, ${cfg.keys} keys written to each`);
      const order = rep % 2 === 0 ? stores : [...stores].reverse();
      for (const pipeline of cfg.pipelines) {
        for (const workload of cfg.workloads) {
          for (const s of order) {
            const load =
              cfg.requests > 0
                ? ['-n', String(cfg.requests)]
                : ['--duration', String(cfg.durationS), '--warmup', String(cfg.warmupS)];
            const server = servers.get(s)!;
            if (cfg.timelines !== undefined) {
              mkdirSync(cfg.timelines, { recursive: true });
              load.push(
                '--timeline',
                join(cfg.timelines, `${mode}-P${pipeline}-${workload}-${s}-${rep + 1}.csv`),
              );
            }
            const upkeepBefore = await server.upkeep();
            const cpuBefore = server.cpuMs;
            const report = await kvBench(s, server.port, [
              '-c',
              String(cfg.clients),
              '-P',
              String(pipeline),
              '-d',
              String(cfg.valueBytes),
              '-r',
              String(cfg.keys),
              '-t',
              workload,
              '--seed',
              String(rep + 1),
              ...load,
            ]);
            const result = report.results[0]!;
            const cpuUsPerRequest = ((server.cpuMs - cpuBefore) * 1000) / result.requests;
            const upkeep = upkeepDuring(s, upkeepBefore, await server.upkeep());
            cell(pipeline, workload, s).push({ result, cpuUsPerRequest, upkeep });
          }
        }
      }
      for (const srv of servers.values()) {
        await srv.stop();
        live.delete(srv);
      }
    }
    for (const pipeline of cfg.pipelines) {
      for (const workload of cfg.workloads) {
        const segkv = stats(cell(pipeline, workload, 'segkv'));
        const redis = redisBin ? stats(cell(pipeline, workload, 'redis')) : null;
        rows.push({
          mode,
          pipeline,
          workload,
          segkv,
          redis,
          opsRatio: redis ? segkv.opsPerSec / redis.opsPerSec : null,
          p99Ratio: redis ? segkv.p99Ms / redis.p99Ms : null,
          cpuRatio: redis ? segkv.cpuUsPerRequest / redis.cpuUsPerRequest : null,
        });
        log(
          `${mode} -P ${pipeline} ${workload}: segkv ${fmt(segkv.opsPerSec)} ops/s p99 ${segkv.p99Ms} ms ` +
            `CPU ${segkv.cpuUsPerRequest.toFixed(1)} µs/request` +
            (redis
              ? `; redis ${fmt(redis.opsPerSec)} ops/s p99 ${redis.p99Ms} ms CPU ${redis.cpuUsPerRequest.toFixed(1)} µs/request`
              : '') +
            upkeepNote({ segkv, redis }),
        );
      }
    }
  }
  return rows;
}

async function memoryAndRestart(
  cfg: Config,
  root: TempRoot,
  store: Store,
  redisBin: string,
  live: Set<ServerProc>,
): Promise<MemoryResult> {
  const dir = root.dir(`${store}-memory`);
  let srv = await ServerProc.start(store, redisBin, dir, 'interval', await freePort());
  live.add(srv);
  const rss: MemoryResult['rssBytes'] = [];
  let written = 0;
  for (const keys of cfg.sizes) {
    const t0 = performance.now();
    await kvBench(store, srv.port, [
      '--prefill',
      '--prefill-start',
      String(written),
      '-r',
      String(keys),
      '-c',
      '16',
      '-P',
      '16',
      '-d',
      String(cfg.valueBytes),
      '-t',
      'ping',
      '-n',
      '1',
    ]);
    written = keys;
    const loadS = (performance.now() - t0) / 1000;
    await sleep(1500); // one everysec/interval sync
    const afterLoad = srv.rss;
    const bytes = await settledRss(srv);
    rss.push({ keys, bytes, afterLoadBytes: afterLoad, fileBytes: srv.rssFile });
    log(
      `${store}: ${fmt(keys)} keys written in ${loadS.toFixed(1)} s, RSS ${(afterLoad / MiB).toFixed(0)} MiB after 1.5 s, ${(bytes / MiB).toFixed(0)} MiB settled`,
    );
  }
  await srv.stop();
  live.delete(srv);
  srv = await ServerProc.start(store, redisBin, dir, 'interval', await freePort());
  live.add(srv);
  const restart = { keys: written, ms: Math.round(srv.readyMs), rssBytes: srv.rss };
  log(`${store}: restart with ${fmt(written)} keys ready in ${restart.ms} ms`);
  await srv.stop();
  live.delete(srv);
  return { store, rssBytes: rss, restart };
}

const MiB = 2 ** 20;
const ratio = (x: number | null | undefined) => (x === null || x === undefined ? '-' : `${x.toFixed(2)}x`);

function throughputTable(rows: ThroughputRow[]): string {
  const head = [
    'fsync (segkv/redis)',
    'P',
    'workload',
    'segkv ops/s',
    'redis ops/s',
    'ops ratio',
    'segkv p99 ms',
    'redis p99 ms',
    'p99 ratio',
    'segkv CPU µs/req',
    'redis CPU µs/req',
    'CPU ratio',
  ];
  const body = rows.map((r) => [
    r.mode === 'always' ? 'always/always' : 'interval/everysec',
    String(r.pipeline),
    r.workload,
    fmt(r.segkv.opsPerSec),
    r.redis ? fmt(r.redis.opsPerSec) : '-',
    ratio(r.opsRatio),
    r.segkv.p99Ms.toFixed(3),
    r.redis ? r.redis.p99Ms.toFixed(3) : '-',
    ratio(r.p99Ratio),
    r.segkv.cpuUsPerRequest.toFixed(1),
    r.redis ? r.redis.cpuUsPerRequest.toFixed(1) : '-',
    ratio(r.cpuRatio),
  ]);
  const notes = rows.flatMap((r) => {
    const note = upkeepNote(r);
    return note === '' ? [] : [`${r.mode} -P ${r.pipeline} ${r.workload}:${note}`];
  });
  return [formatTable(head, body, 3), ...notes].join('\n');
}

function memoryTable(mem: MemoryResult[]): string {
  const seg = mem.find((m) => m.store === 'segkv');
  const red = mem.find((m) => m.store === 'redis');
  const rows: string[][] = [];
  for (const [i, point] of (seg ?? red)!.rssBytes.entries()) {
    const a = seg?.rssBytes[i]?.bytes;
    const b = red?.rssBytes[i]?.bytes;
    rows.push([
      `RSS after ${fmt(point.keys)} keys (settled)`,
      a === undefined ? '-' : `${(a / MiB).toFixed(0)} MiB`,
      b === undefined ? '-' : `${(b / MiB).toFixed(0)} MiB`,
      a !== undefined && b !== undefined ? ratio(a / b) : '-',
    ]);
    // Same reading, same moment, both servers: what of it is file pages (node's binary is ~42 MiB of them).
    const fa = seg?.rssBytes[i]?.fileBytes;
    const fb = red?.rssBytes[i]?.fileBytes;
    rows.push([
      '  of which file pages (binary, libs)',
      fa === undefined ? '-' : `${(fa / MiB).toFixed(0)} MiB`,
      fb === undefined ? '-' : `${(fb / MiB).toFixed(0)} MiB`,
      '',
    ]);
  }
  const ra = seg?.restart;
  const rb = red?.restart;
  rows.push([
    `restart with ${fmt((ra ?? rb)!.keys)} keys`,
    ra ? `${(ra.ms / 1000).toFixed(2)} s` : '-',
    rb ? `${(rb.ms / 1000).toFixed(2)} s` : '-',
    ra && rb ? ratio(ra.ms / rb.ms) : '-',
  ]);
  rows.push([
    'RSS after restart',
    ra ? `${(ra.rssBytes / MiB).toFixed(0)} MiB` : '-',
    rb ? `${(rb.rssBytes / MiB).toFixed(0)} MiB` : '-',
    ra && rb ? ratio(ra.rssBytes / rb.rssBytes) : '-',
  ]);
  return formatTable(['', 'segkv', 'redis', 'ratio'], rows, 1);
}

async function main(): Promise<void> {
  const cfg = parseArgs(process.argv.slice(2));
  const started = new Date();
  const root = new TempRoot('segkv-bench-server-');
  const live = new Set<ServerProc>();
  root.onCleanup(() => {
    for (const s of live) s.killNow();
  });
  const notes: string[] = [];
  const redisBin = redisBinary(cfg.redis, 'bench:server');
  let redisVersion: string | null = null;
  if (!redisBin) {
    const msg = 'redis-server is not installed and could not be installed: the Redis peer is SKIPPED';
    log(msg);
    notes.push(msg);
  } else {
    const v = spawnSync(redisBin, ['--version'], { encoding: 'utf8' }).stdout;
    redisVersion = /v=([\d.]+)/.exec(v)?.[1] ?? v.trim();
  }
  const loadBefore = loadavg();
  const rows = cfg.throughput ? await throughput(cfg, root, redisBin, live) : [];
  const memory: MemoryResult[] = [];
  if (cfg.memory) {
    memory.push(await memoryAndRestart(cfg, root, 'segkv', '', live));
    if (redisBin) memory.push(await memoryAndRestart(cfg, root, 'redis', redisBin, live));
  }
  const loadAfter = loadavg();
  const machine = {
    cpu: cpus()[0]?.model ?? '?',
    cores: cpus().length,
    memoryBytes: totalmem(),
    node: process.version,
    redis: redisVersion,
    loadavgBefore: loadBefore,
    loadavgAfter: loadAfter,
  };
  const load =
    cfg.requests > 0 ? `-n ${cfg.requests}` : `--duration ${cfg.durationS} --warmup ${cfg.warmupS}`;
  const command = cfg.throughput
    ? `kv-bench -c ${cfg.clients} -d ${cfg.valueBytes} -r ${cfg.keys} ${load} -P {${cfg.pipelines.join(',')}} ` +
      `-t {${cfg.workloads.join(',')}}, ${cfg.repeat} runs per row (median)`
    : `memory and restart only: kv-bench --prefill -c 16 -P 16 -d ${cfg.valueBytes} up to {${cfg.sizes.join(',')}} keys`;
  const out = [
    `bench:server — ${started.toISOString()} — ${machine.cpu}, ${machine.cores} cores, node ${machine.node}, redis ${redisVersion ?? 'skipped'}`,
    `load: ${command}; load average ${loadBefore.map((x) => x.toFixed(1)).join(' ')} → ${loadAfter.map((x) => x.toFixed(1)).join(' ')}`,
  ];
  if (rows.length > 0) out.push('', throughputTable(rows));
  if (memory.length > 0) out.push('', memoryTable(memory));
  for (const n of notes) out.push('', `NOTE: ${n}`);
  process.stdout.write(`${out.join('\n')}\n`);
  const data = {
    benchmark: 'server',
    started: started.toISOString(),
    machine,
    config: cfg,
    command,
    rows,
    memory,
    notes,
  };
  const jsonPath = writeResults('server', started, data, cfg.out);
  log(`results: ${jsonPath}`);
  if (rows.length > 0) {
    const svgPath = jsonPath.replace(/\.json$/, '') + '.svg';
    writeFileSync(svgPath, serverChart(rows, `segkv vs Redis ${redisVersion ?? ''} — ${command}`));
    log(`chart: ${svgPath}`);
  }
}

runMain(main);
