/**
 * `npm run bench:engine`: segkv's embedded engine against classic-level
 * (LevelDB) and lmdb, on the same work in the same run (DESIGN.md §7).
 *
 *   sets      `keys` sets of 16-byte keys / 100-byte values per durability
 *             mode; `always` with 64 writers, interval/never with
 *             --concurrency outstanding promises (same for every engine; the
 *             durability mapping is in adapters.ts); then `interval` again
 *             through each engine's batch API: --batch keys per call,
 *             --batch-concurrency calls outstanding (one promise per call)
 *   gets      `keys` random reads of a `keys`-key data set, engine cache off
 *             (cold: a pread each) and on and warmed (hot: the small-value
 *             cache by keydir slot); then segkv alone on `keys`/4 keys of
 *             1 KiB values (the lru-cache's size range) through each read
 *             path: pread, lru-cache, slot cache
 *   restart   open time of a `keys` and a `big-keys` data set, segkv with and
 *             without hint files (deleted for the "without" run)
 *   memory    segkv bytes per key after a restart (heap + arrayBuffers delta
 *             after gc, in a fresh process per size, caches off: the
 *             keydir's own), total and beyond the 16 key bytes
 *
 * Every measurement runs in a fresh child process (engine-child.ts), repeated
 * --repeat times with the engines interleaved; the table shows medians and
 * segkv/peer ratios. Data lives in temporary directories under os.tmpdir(),
 * removed at the end (and on Ctrl-C). Results also go to
 * tools/bench/results/engine-<date>.json.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { ENGINES, type EngineName, type Mode } from './adapters.js';
import type { GetsResult, Job, JobResult, RestartResult, SetsResult } from './engine-jobs.js';
import {
  BENCH_DIST_DIR,
  benchArgs,
  commandLine,
  fmt,
  formatTable,
  logLine,
  median,
  printTargets,
  runChild as runChildScript,
  runInfo,
  runMain,
  type Target,
  TempRoot,
  UsageError,
  writeResults,
} from './lib.js';

const HELP = `usage: npm run bench:engine -- [options]

  --keys N           keys for sets, gets and the small restart (default 1000000)
  --big-keys N       keys for the big restart and memory run, 0 to skip (default 10000000)
  --repeat N         runs of each measurement; the table shows medians (default 3)
  --concurrency N    outstanding writes in interval/never modes (default 256)
  --always-concurrency N  outstanding writes in always mode (default 64)
  --batch N          keys per batch call in the "batch set interval" row, 0 to skip it (default 256)
  --batch-concurrency N  batch calls outstanding in that row (default 4)
  --max-seconds S    stop a set run after S seconds and report the rate so far (default 30)
  --engines LIST     comma-separated subset of segkv,classic-level,lmdb
  --only LIST        comma-separated subset of sets,gets,restart
  --big-peers        also time the peers' open at --big-keys (slow to load)
  --quick            CI smoke: 50k keys, 200k big keys, 1 run, 5 s cap
  --out FILE         JSON results path (default tools/bench/results/engine-<date>.json)
  --no-json          do not write the JSON file
  --help             this text
`;

interface Config {
  keys: number;
  bigKeys: number;
  repeat: number;
  concurrency: number;
  alwaysConcurrency: number;
  batch: number;
  batchConcurrency: number;
  maxSeconds: number;
  engines: EngineName[];
  only: Set<string>;
  bigPeers: boolean;
  quick: boolean;
  out: string | undefined;
  json: boolean;
}

function parseArgs(argv: string[]): Config {
  const a = benchArgs(argv, HELP, {
    keys: { type: 'string' },
    'big-keys': { type: 'string' },
    repeat: { type: 'string' },
    concurrency: { type: 'string' },
    'always-concurrency': { type: 'string' },
    batch: { type: 'string' },
    'batch-concurrency': { type: 'string' },
    'max-seconds': { type: 'string' },
    engines: { type: 'string' },
    only: { type: 'string' },
    'big-peers': { type: 'boolean' },
    quick: { type: 'boolean' },
    out: { type: 'string' },
    'no-json': { type: 'boolean' },
  });
  const quick = a.flag('quick');
  // --quick sets the sizes; options given with it still win.
  const q = (full: number, small: number) => (quick ? small : full);
  let engines: EngineName[] = [...ENGINES];
  const enginesText = a.string('engines');
  if (enginesText !== undefined) {
    engines = enginesText.split(',') as EngineName[];
    for (const e of engines)
      if (!ENGINES.includes(e)) throw new UsageError(`unknown engine ${e}; see --help`);
    if (!engines.includes('segkv')) engines.unshift('segkv');
  }
  return {
    keys: a.int('keys', q(1_000_000, 50_000), 1000),
    bigKeys: a.int('big-keys', q(10_000_000, 200_000), 0),
    repeat: a.int('repeat', q(3, 1), 1),
    concurrency: a.int('concurrency', 256, 1),
    alwaysConcurrency: a.int('always-concurrency', 64, 1),
    batch: a.int('batch', 256, 0),
    batchConcurrency: a.int('batch-concurrency', 4, 1),
    maxSeconds: a.int('max-seconds', q(30, 5), 1),
    engines,
    only: new Set((a.string('only') ?? 'sets,gets,restart').split(',')),
    bigPeers: a.flag('big-peers'),
    quick,
    out: a.string('out'),
    json: !a.flag('no-json'),
  };
}

// ---- child processes ---------------------------------------------------------

const childScript = join(BENCH_DIST_DIR, 'engine-child.js');

function runChild<R extends JobResult>(job: Job): Promise<R> {
  return runChildScript<R>(childScript, job, ['--expose-gc', '--max-old-space-size=16384']).catch(
    (err: Error) => {
      throw new Error(err.message.replace(`${job.kind} job`, `${job.kind} job for ${job.engine}`));
    },
  );
}

// ---- temporary directories ---------------------------------------------------

const tmp = new TempRoot('segkv-bench-');
const root = tmp.path;
const freshDir = (label: string): string => tmp.dir(label);

// ---- table ---------------------------------------------------------------------

interface Row {
  name: string;
  unit: string;
  /** Samples per engine; the table shows the median. */
  samples: Partial<Record<EngineName, number[]>>;
  /** Higher is better (ops/s, keys/s) or lower (bytes). */
  higherIsBetter: boolean;
  note?: string;
}

function printTable(rows: Row[], engines: EngineName[]): string {
  const peers = engines.filter((e) => e !== 'segkv');
  const head = ['benchmark', 'unit', 'segkv', 'segkv min..max'];
  for (const p of peers) head.push(p, `segkv/${p}`);
  const lines: string[][] = [];
  for (const r of rows) {
    const s = r.samples.segkv ?? [];
    const mine = s.length ? median(s) : undefined;
    const line = [
      r.name,
      r.unit,
      fmt(mine),
      s.length ? `${fmt(Math.min(...s))}..${fmt(Math.max(...s))}` : '-',
    ];
    for (const p of peers) {
      const ps = r.samples[p];
      const theirs = ps?.length ? median(ps) : undefined;
      line.push(fmt(theirs), mine !== undefined && theirs ? `${(mine / theirs).toFixed(2)}x` : '-');
    }
    lines.push(line);
  }
  return formatTable(head, lines, 2);
}

// ---- the benchmark -----------------------------------------------------------

/** Value size of the read-path rows: one the lru-cache takes (it skips values under 512 B). */
const READ_PATH_VALUE_BYTES = 1024;
/** segkv's read paths, by the cache mode that selects each (adapters.ts). */
const READ_PATHS: readonly (readonly ['cold' | 'lru' | 'hot', string])[] = [
  ['cold', 'pread'],
  ['lru', 'lru-cache'],
  ['hot', 'slot cache'],
];

function log(msg: string): void {
  logLine('bench:engine', msg);
}

async function load(engine: EngineName, keys: number, cfg: Config, valueBytes = 100): Promise<string> {
  const dir = freshDir(`${engine}-${keys}-${valueBytes}`);
  const r = await runChild<SetsResult>({
    kind: 'sets',
    engine,
    dir,
    mode: 'never',
    keys,
    concurrency: cfg.concurrency,
    maxSeconds: 1e9,
    valueBytes,
  });
  log(`loaded ${keys} keys of ${valueBytes} B into ${engine} at ${fmt(r.opsPerSec)}/s`);
  return dir;
}

/**
 * One row of sets: `cfg.keys` sets into a fresh directory per engine and
 * repeat, in `mode` with `concurrency` calls outstanding; with `batch`,
 * through each engine's batch API (Engine.putBatch), one promise per
 * `batch` keys.
 */
async function setsRow(
  cfg: Config,
  name: string,
  dirTag: string,
  job: { mode: Mode; concurrency: number; batch?: number },
): Promise<Row> {
  const row: Row = { name, unit: 'ops/s', samples: {}, higherIsBetter: true };
  const capped: string[] = [];
  for (let r = 0; r < cfg.repeat; r++) {
    for (const engine of cfg.engines) {
      const dir = freshDir(`${engine}-${dirTag}`);
      const res = await runChild<SetsResult>({
        kind: 'sets',
        engine,
        dir,
        keys: cfg.keys,
        maxSeconds: cfg.maxSeconds,
        ...job,
      });
      rmSync(dir, { recursive: true, force: true });
      (row.samples[engine] ??= []).push(res.opsPerSec);
      if (res.ops < cfg.keys) capped.push(`${engine} ${res.ops}`);
      log(`${name} ${engine}: ${fmt(res.opsPerSec)} ops/s (${res.ops} ops in ${res.seconds.toFixed(2)} s)`);
    }
  }
  if (capped.length) row.note = `stopped at --max-seconds: ${capped.join(', ')} ops`;
  return row;
}

async function main(): Promise<void> {
  const cfg = parseArgs(process.argv.slice(2));
  const started = new Date();
  const rows: Row[] = [];
  log(
    `keys=${cfg.keys} big-keys=${cfg.bigKeys} repeat=${cfg.repeat} engines=${cfg.engines.join(',')} tmp=${root}`,
  );

  if (cfg.only.has('sets')) {
    for (const mode of ['always', 'interval', 'never'] as Mode[]) {
      const concurrency = mode === 'always' ? cfg.alwaysConcurrency : cfg.concurrency;
      rows.push(await setsRow(cfg, `set ${mode} c=${concurrency}`, 'sets', { mode, concurrency }));
    }
    if (cfg.batch > 0) {
      const name = `batch set interval b=${cfg.batch} c=${cfg.batchConcurrency}`;
      rows.push(
        await setsRow(cfg, name, 'batch-sets', {
          mode: 'interval',
          concurrency: cfg.batchConcurrency,
          batch: cfg.batch,
        }),
      );
    }
  }

  const datasets = new Map<EngineName, string>();
  if (cfg.only.has('gets') || cfg.only.has('restart')) {
    for (const engine of cfg.engines) datasets.set(engine, await load(engine, cfg.keys, cfg));
  }

  if (cfg.only.has('gets')) {
    for (const cache of ['cold', 'hot'] as const) {
      const row: Row = { name: `get random ${cache}`, unit: 'ops/s', samples: {}, higherIsBetter: true };
      for (let r = 0; r < cfg.repeat; r++) {
        for (const engine of cfg.engines) {
          const res = await runChild<GetsResult>({
            kind: 'gets',
            engine,
            dir: datasets.get(engine)!,
            keys: cfg.keys,
            reads: cfg.keys,
            cache,
          });
          if (res.misses) throw new Error(`${engine} missed ${res.misses} keys`);
          (row.samples[engine] ??= []).push(res.opsPerSec);
          log(`${row.name} ${engine}: ${fmt(res.opsPerSec)} ops/s`);
        }
      }
      rows.push(row);
    }
    // The read paths side by side, on values the lru-cache takes (512 B and more).
    const keys = Math.max(1000, Math.floor(cfg.keys / 4));
    const dir = await load('segkv', keys, cfg, READ_PATH_VALUE_BYTES);
    for (const [cache, label] of READ_PATHS) {
      const row: Row = {
        name: `get ${READ_PATH_VALUE_BYTES} B ${label}`,
        unit: 'ops/s',
        samples: {},
        higherIsBetter: true,
        note: `${keys} keys of ${READ_PATH_VALUE_BYTES} B, segkv only`,
      };
      for (let r = 0; r < cfg.repeat; r++) {
        const res = await runChild<GetsResult>({
          kind: 'gets',
          engine: 'segkv',
          dir,
          keys,
          reads: cfg.keys,
          cache,
          valueBytes: READ_PATH_VALUE_BYTES,
        });
        if (res.misses) throw new Error(`segkv missed ${res.misses} keys`);
        (row.samples.segkv ??= []).push(res.opsPerSec);
        log(`${row.name}: ${fmt(res.opsPerSec)} ops/s`);
      }
      rows.push(row);
    }
    rmSync(dir, { recursive: true, force: true });
  }

  const memRows: Row[] = [];
  const recoveryNotes: string[] = [];
  const restart = async (keys: number, dirs: Map<EngineName, string>, peers: boolean) => {
    const withHints: Row = {
      name: `restart ${keys} hints`,
      unit: 'keys/s',
      samples: {},
      higherIsBetter: true,
    };
    const without: Row = {
      name: `restart ${keys} no hints`,
      unit: 'keys/s',
      samples: {},
      higherIsBetter: true,
    };
    const mem: Row = { name: `memory ${keys} keys`, unit: 'B/key', samples: {}, higherIsBetter: false };
    const beyond: Row = {
      name: `memory ${keys} beyond key`,
      unit: 'B/key',
      samples: {},
      higherIsBetter: false,
    };
    // All runs with hints first: a run without them deletes them.
    for (const hints of [true, false]) {
      for (let r = 0; r < cfg.repeat; r++) {
        for (const engine of cfg.engines) {
          if (engine !== 'segkv' && !peers) continue;
          const dir = dirs.get(engine)!;
          const res = await runChild<RestartResult>({
            kind: 'restart',
            engine,
            dir,
            keys,
            hints,
            memory: engine === 'segkv' && hints,
          });
          // Peers have no hints: their open time is the comparison for both rows.
          if (engine !== 'segkv' && !hints) continue;
          for (const row of engine === 'segkv' ? [hints ? withHints : without] : [withHints, without]) {
            (row.samples[engine] ??= []).push(res.keysPerSec);
          }
          if (res.bytesPerKey !== undefined) {
            (mem.samples.segkv ??= []).push(res.bytesPerKey);
            (beyond.samples.segkv ??= []).push(res.bytesPerKey - 16);
          }
          if (engine === 'segkv' && r === 0) {
            recoveryNotes.push(
              `restart ${keys} ${hints ? 'hints' : 'no hints'}: ${res.fromHints} segments from hints, ${res.scanned} scanned`,
            );
          }
          log(
            `restart ${keys} ${engine}${engine === 'segkv' ? (hints ? ' hints' : ' no hints') : ''}: ${res.ms.toFixed(0)} ms` +
              (res.bytesPerKey !== undefined ? `, ${res.bytesPerKey.toFixed(1)} B/key` : ''),
          );
        }
      }
    }
    rows.push(withHints, without);
    memRows.push(mem, beyond);
  };

  if (cfg.only.has('restart')) {
    await restart(cfg.keys, datasets, true);
    if (cfg.bigKeys > 0) {
      const big = new Map<EngineName, string>();
      for (const engine of cfg.engines) {
        if (engine !== 'segkv' && !cfg.bigPeers) continue;
        big.set(engine, await load(engine, cfg.bigKeys, cfg));
      }
      await restart(cfg.bigKeys, big, cfg.bigPeers);
      for (const d of big.values()) rmSync(d, { recursive: true, force: true });
    }
    rows.push(...memRows);
  }

  const table = printTable(rows, cfg.engines);
  const command = commandLine('bench:engine');
  process.stdout.write(`\n${command}\n${table}\n`);
  for (const r of rows) if (r.note) process.stdout.write(`note: ${r.name}: ${r.note}\n`);
  for (const n of recoveryNotes) process.stdout.write(`note: ${n}\n`);

  const targets = checkTargets(rows, cfg);
  printTargets(2, targets);

  if (cfg.json) {
    const out = writeResults(
      'engine',
      started,
      {
        ...runInfo(command, started),
        config: { ...cfg, only: [...cfg.only] },
        rows: rows.map((r) => ({
          ...r,
          median: Object.fromEntries(Object.entries(r.samples).map(([e, s]) => [e, median(s)])),
        })),
        notes: recoveryNotes,
        targets,
      },
      cfg.out,
    );
    process.stdout.write(`\nwrote ${out}\n`);
  }
}

function checkTargets(rows: Row[], cfg: Config): Target[] {
  const med = (name: string, engine: EngineName): number | undefined => {
    const s = rows.find((r) => r.name.startsWith(name))?.samples[engine];
    return s?.length ? median(s) : undefined;
  };
  const out: Target[] = [];
  const setI = med('set interval', 'segkv');
  const setIL = med('set interval', 'classic-level');
  if (setI !== undefined) {
    out.push({
      target: 'sets >= 1M/s in interval mode (a promise per set)',
      measured: `${fmt(setI)} ops/s`,
      met: setI >= 1e6,
    });
    if (setIL !== undefined) {
      out.push({
        target: 'sets >= 2x classic-level (interval)',
        measured: `${(setI / setIL).toFixed(2)}x`,
        met: setI >= 2 * setIL,
      });
    }
  }
  const setB = med('batch set interval', 'segkv');
  if (setB !== undefined) {
    out.push({
      target: `sets >= 1M/s in interval mode (batch() of ${cfg.batch})`,
      measured: `${fmt(setB)} ops/s`,
      met: setB >= 1e6,
    });
  }
  const cold = med('get random cold', 'segkv');
  const hot = med('get random hot', 'segkv');
  if (cold !== undefined && hot !== undefined) {
    out.push({
      target: 'hot small GET (slot cache) faster than a pread',
      measured: `${(hot / cold).toFixed(2)}x`,
      met: hot > cold,
    });
  }
  const paths = READ_PATHS.map(([, label]) => med(`get ${READ_PATH_VALUE_BYTES} B ${label}`, 'segkv'));
  if (paths.every((p) => p !== undefined)) {
    const [pread, lru, slot] = paths as number[];
    out.push({
      target: `slot cache faster than pread and lru-cache (${READ_PATH_VALUE_BYTES} B)`,
      measured: `${(slot! / pread!).toFixed(2)}x pread, ${(slot! / lru!).toFixed(2)}x lru-cache`,
      met: slot! > pread! && slot! > lru!,
    });
  }
  for (const c of ['cold', 'hot']) {
    const g = med(`get random ${c}`, 'segkv');
    const gl = med(`get random ${c}`, 'classic-level');
    if (g !== undefined && gl !== undefined) {
      out.push({ target: `gets (${c}) >= classic-level`, measured: `${(g / gl).toFixed(2)}x`, met: g >= gl });
    }
  }
  for (const keys of [cfg.keys, cfg.bigKeys]) {
    const r = med(`restart ${keys} hints`, 'segkv');
    if (r !== undefined) {
      out.push({
        target: `restart with hints >= 2M keys/s (${keys} keys)`,
        measured: `${fmt(r)} keys/s`,
        met: r >= 2e6,
      });
    }
  }
  const m = med(`memory ${cfg.bigKeys} beyond key`, 'segkv');
  if (m !== undefined) {
    out.push({
      target: `<= 64 B/key beyond the key at ${cfg.bigKeys} keys`,
      measured: `${m.toFixed(1)} B/key`,
      met: m <= 64,
    });
  }
  return out;
}

runMain(main);
