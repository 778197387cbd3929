#!/usr/bin/env node
/**
 * torture: a crash loop against a real kv-server (DESIGN.md §1.1, §1.2).
 *
 * For each durability mode (`always`, `interval`) it starts kv-server on one
 * data directory with tiny segments (rotation every few dozen records) and an
 * eager compactor (dead ratio 0.1, checked every 50 ms, no pause between runs),
 * runs a concurrent workload through the SDK, SIGKILLs the server at a random
 * moment (a third of the kills land 0-25 ms after a COMPACT was issued),
 * restarts it on the same directory and checks every key against a model of
 * what was acknowledged. Then the next cycle writes on top of what survived.
 *
 * Workload: W workers, each with one operation in flight at a time on keys it
 * alone owns: SET and DEL of single keys, MSET of a group of 4 keys with one
 * version, and DEL of the whole group (a multi-key DEL is one atomic batch).
 * A value is `<key>=<version>|<padding>`, version `c<cycle>.w<worker>.s<seq>`,
 * so a value read back names the key it was written for and the write.
 *
 * What is checked after every restart, per key (the promise of both modes:
 * the store hands each record to the OS before it acks, and SIGKILL keeps
 * the page cache, so `interval` must lose nothing acknowledged either; only
 * a power loss may cost `interval` its last tick, see power-loss tests):
 * - lost: the key is absent, or holds an older write, while the latest
 *   acknowledged write (or the one in flight at the kill) set it;
 * - resurrected: an acknowledged delete, yet a value is there;
 * - never written: a value that no write produced for this key;
 * - half mset: the members of a group do not hold one and the same write.
 * The last cycle ends with SIGTERM instead (nothing in flight), and then the
 * state must equal the acknowledged one exactly.
 *
 * Usage: node dist/tools/torture.js [--cycles N] [--quick] [--modes always,interval]
 *        [--seed S] [--max-seconds T] [--sabotage]   (exit 1 on any violation or crash)
 * --sabotage is the checker's self-test: after each kill the end of the log
 * is cut off, always taking the cycle's last acknowledged write (its witness,
 * lib/sabotage.ts), and each witness must be reported lost.
 * Every loop is bounded: cycles, a per-mode time budget, per-request timeouts.
 *
 * Also a violation: a write refused before the kill, or an `fsync failed`
 * line in the server's log. `interval` runs with a 5 ms tick so its fsyncs
 * race the rotations and compaction swaps (issue 11 A). What `interval`
 * promises at power loss (only a suffix lost, issue 11 D) and a full disk
 * (B, C) are tested on MemFs and tmpfs: test/engine/sync-order.test.ts,
 * test/engine/disk-full.test.ts, test/reliability/full-disk.test.ts.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KvClient } from '../src/index.js';
import { integerAtLeast, ownChild, parseOptionsStrictly, runHarness, UsageError } from './lib/cli.js';
import { type Cut, cutLogEnd, type Witness } from './lib/sabotage.js';
import { markdownTable } from './lib/table.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const KV_SERVER = join(HERE, '..', 'src', 'server', 'main.js');

const WORKERS = 8;
const KEYS_PER_WORKER = 6;
const GROUPS_PER_WORKER = 2;
const MEMBERS = 4;
/** Segment size: a record here is ~40-250 bytes, so the log rotates every few dozen records. */
const SEGMENT_BYTES = 8 * 1024;
/**
 * With --sabotage, a cycle is not killed before this many writes were
 * acknowledged in it (or SABOTAGE_WAIT_MS passed): on a loaded machine a
 * 30 ms cycle could ack none. Then its writers stop (nothing is in flight at
 * the kill), the harness writes the witness and the cut takes it off
 * (lib/sabotage.ts).
 */
const SABOTAGE_MIN_ACKED = 64;
const SABOTAGE_WAIT_MS = 10_000;
const COMPACTION_FLAGS = [
  '--compaction-min-dead-ratio',
  '0.1',
  '--compaction-min-dead-bytes',
  '0',
  '--compaction-check-interval-ms',
  '50',
  '--compaction-min-interval-ms',
  '0',
];

/**
 * The `interval` tick here (the default is 1 s): short, so that fsync ticks
 * overlap the rotations and compaction swaps of the tiny segments (issue 11 A:
 * a tick synced a segment that a compaction had closed, EBADF, and every
 * later write was refused).
 */
const INTERVAL_TICK_MS = 5;

type Mode = 'always' | 'interval';

interface Options {
  cycles: number;
  modes: Mode[];
  seed: number;
  maxSeconds: number;
  quick: boolean;
  /** Checker self-test: after each kill, cut the log's end (at least the witness, lib/sabotage.ts); violations must follow. */
  sabotage: boolean;
}

function parseOptions(argv: string[]): Options {
  const values = parseOptionsStrictly(argv, {
    cycles: { type: 'string' },
    quick: { type: 'boolean', default: false },
    modes: { type: 'string', default: 'always,interval' },
    seed: { type: 'string' },
    'max-seconds': { type: 'string' },
    sabotage: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  });
  if (values.help) {
    process.stdout.write(
      'usage: torture [--cycles N (default 200; 25 with --quick)] [--quick] [--modes always,interval]\n' +
        '               [--seed S] [--max-seconds T per mode (default 1800; 25 with --quick)]\n' +
        '               [--sabotage: checker self-test, loses acked writes on purpose; must exit 1]\n',
    );
    process.exit(0);
  }
  const quick = values.quick === true;
  const modes = String(values.modes)
    .split(',')
    .map((m) => m.trim());
  for (const m of modes) {
    if (m !== 'always' && m !== 'interval')
      throw new UsageError(`--modes takes always and/or interval, got ${m}`);
  }
  return {
    cycles: integerAtLeast('cycles', values.cycles, quick ? 25 : 200, 1),
    modes: modes as Mode[],
    seed: integerAtLeast('seed', values.seed, Date.now() % 1_000_000, 0),
    maxSeconds: integerAtLeast('max-seconds', values['max-seconds'], quick ? 25 : 1800, 1),
    quick,
    sabotage: values.sabotage === true,
  };
}

function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** A timeout for races: does not keep the process alive. */
const deadlineAfter = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

// ---- the model ------------------------------------------------------------

const plainKey = (w: number, j: number) => `w${w}/k${j}`;
const groupKeys = (w: number, g: number) => Array.from({ length: MEMBERS }, (_, i) => `w${w}/g${g}/m${i}`);
const ALL_GROUPS: string[][] = [];
const ALL_KEYS: string[] = [];
for (let w = 0; w < WORKERS; w++) {
  for (let j = 0; j < KEYS_PER_WORKER; j++) ALL_KEYS.push(plainKey(w, j));
  for (let g = 0; g < GROUPS_PER_WORKER; g++) {
    ALL_GROUPS.push(groupKeys(w, g));
    ALL_KEYS.push(...groupKeys(w, g));
  }
}

/** Version of each key: null = absent. */
type State = Map<string, string | null>;

/** `<key>=<version>|<pad>` → version, or undefined when the value does not name this key. */
function versionOf(key: string, value: string): string | undefined {
  if (!value.startsWith(`${key}=`)) return undefined;
  const bar = value.indexOf('|', key.length + 1);
  return bar < 0 ? undefined : value.slice(key.length + 1, bar);
}

interface Counters {
  cycles: number;
  kills: number;
  killsAfterCompact: number;
  opsIssued: number;
  writesAcked: number;
  keysChecked: number;
  ackedVerified: number;
  inflightLanded: number;
  inflightLost: number;
  crashes: number;
  violations: string[];
  rotationsSeen: number;
  compactionsDone: number;
  compactionsKilledMidRun: number;
  swapsFinishedAtRecovery: number;
  tempFilesSwept: number;
  tornTailsRecovered: number;
  /** --sabotage: each cut, and the checker's report of its witness after the restart (undefined: not reported). */
  sabotaged: { cycle: number; witness: Witness; cut: Cut; reported?: string }[];
}

const count = (log: string, re: RegExp) => log.match(re)?.length ?? 0;

// ---- the server -----------------------------------------------------------

interface Running {
  proc: ChildProcess;
  port: number;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startServer(dir: string, mode: Mode): Promise<Running> {
  const args = [KV_SERVER, '--dir', dir, '--host', '127.0.0.1', '--port', '0', '--fsync', mode];
  args.push('--max-segment-bytes', String(SEGMENT_BYTES), '--log-level', 'info', ...COMPACTION_FLAGS);
  // interval: a tick every few ms, so the periodic fsync keeps racing rotations and compaction swaps.
  if (mode === 'interval') args.push('--fsync-interval-ms', String(INTERVAL_TICK_MS));
  const proc = ownChild(spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] }));
  let err = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
    proc.on('exit', (code, signal) => res({ code, signal })),
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`kv-server did not listen within 20 s:\n${err.slice(-2000)}`));
    }, 20_000);
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (d: string) => {
      err += d;
      if (err.length > 1_000_000) err = err.slice(-200_000);
      const m = /"port":(\d+)[^\n]*"msg":"listening"/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, port: Number(m[1]), stderr: () => err, exited });
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`kv-server exited with ${code} before listening:\n${err.slice(-2000)}`));
    });
  });
}

async function startServerRetrying(dir: string, mode: Mode): Promise<Running> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startServer(dir, mode);
    } catch (err) {
      // Another engineer's build rewriting dist/ at this instant: modules fail to load. Retry a little.
      const m = (err as Error).message;
      if (attempt >= 3 || !(m.includes('SyntaxError') || m.includes('ERR_MODULE_NOT_FOUND'))) throw err;
      await sleep(1000);
    }
  }
}

// ---- one mode -------------------------------------------------------------

async function readAll(client: KvClient): Promise<State> {
  const values = await client.mget(ALL_KEYS);
  const out: State = new Map();
  ALL_KEYS.forEach((k, i) => {
    out.set(k, values[i] ?? null);
  });
  return out;
}

/** Compares what the server holds against the model; updates the model to what was found. */
function verify(
  found: State,
  acked: Map<string, string | null>,
  inflight: Map<string, string | null>,
  c: Counters,
  label: string,
  exact: boolean,
): void {
  const foundVersion = new Map<string, string | null>();
  for (const key of ALL_KEYS) {
    c.keysChecked++;
    const raw = found.get(key) ?? null;
    const want = acked.has(key) ? (acked.get(key) ?? null) : null;
    const has = inflight.has(key);
    const alt = has ? (inflight.get(key) ?? null) : undefined;
    let v: string | null = null;
    if (raw !== null) {
      const parsed = versionOf(key, raw);
      if (parsed === undefined) {
        c.violations.push(`${label}: ${key} holds a value never written for it: ${raw.slice(0, 60)}`);
        foundVersion.set(key, null);
        continue;
      }
      v = parsed;
    }
    foundVersion.set(key, v);
    if (v === want) {
      c.ackedVerified++;
      continue;
    }
    if (!exact && has && v === alt) {
      c.inflightLanded++;
      continue;
    }
    if (want !== null && v === null) c.violations.push(`${label}: ${key} lost acknowledged ${want}`);
    else if (want === null) c.violations.push(`${label}: ${key} resurrected or unacknowledged value ${v}`);
    else c.violations.push(`${label}: ${key} holds ${v}, acknowledged ${want}`);
  }
  for (const members of ALL_GROUPS) {
    const vs = new Set(members.map((k) => foundVersion.get(k) ?? null));
    if (vs.size !== 1) c.violations.push(`${label}: half mset in ${members[0]}..: ${[...vs].join(', ')}`);
  }
  if (!exact) {
    for (const key of inflight.keys()) {
      if ((foundVersion.get(key) ?? null) !== (inflight.get(key) ?? null)) c.inflightLost++;
    }
  }
  acked.clear();
  for (const [k, v] of foundVersion) acked.set(k, v);
  inflight.clear();
}

/**
 * A sabotaged cycle's last write, once its writers have stopped: a SET of a
 * key of worker `cycle % WORKERS` (stopped too), acknowledged into the model
 * like any write. Nothing is sent after it, so it is the log's last record.
 * Refused (it throws), there is no witness and the cycle's kill cuts nothing.
 */
async function writeWitness(
  client: KvClient,
  cycle: number,
  acked: Map<string, string | null>,
  c: Counters,
): Promise<Witness> {
  const witness = { key: plainKey(cycle % WORKERS, 0), version: `c${cycle}.witness` };
  c.opsIssued++;
  await client.set(witness.key, `${witness.key}=${witness.version}|`);
  c.writesAcked++;
  acked.set(witness.key, witness.version);
  return witness;
}

/** The violation the checker reported for a cut's witness, among those of the restart after it. */
function reportOf(witness: Witness, violations: string[]): string | undefined {
  return violations.find((v) => v.includes(`: ${witness.key} `) && v.endsWith(` ${witness.version}`));
}

async function runMode(mode: Mode, o: Options): Promise<Counters> {
  const c: Counters = {
    cycles: 0,
    kills: 0,
    killsAfterCompact: 0,
    opsIssued: 0,
    writesAcked: 0,
    keysChecked: 0,
    ackedVerified: 0,
    inflightLanded: 0,
    inflightLost: 0,
    crashes: 0,
    violations: [],
    rotationsSeen: 0,
    compactionsDone: 0,
    compactionsKilledMidRun: 0,
    swapsFinishedAtRecovery: 0,
    tempFilesSwept: 0,
    tornTailsRecovered: 0,
    sabotaged: [],
  };
  const dir = mkdtempSync(join(tmpdir(), `segkv-torture-${mode}-`));
  const rand = rng(o.seed + (mode === 'always' ? 1 : 2));
  const acked = new Map<string, string | null>();
  const inflight = new Map<string, string | null>();
  const deadline = Date.now() + o.maxSeconds * 1000;
  let maxSegments = 0;
  try {
    for (let cycle = 0; cycle < o.cycles; cycle++) {
      const last = cycle === o.cycles - 1 || Date.now() > deadline;
      const server = await startServerRetrying(dir, mode);
      const log = server.stderr();
      c.tornTailsRecovered += count(log, /"msg":"(truncated a torn tail|removed \d+\.seg)/g);
      c.swapsFinishedAtRecovery += count(log, /finished the swap of a compaction/g);
      c.tempFilesSwept += count(log, /removed an unfinished temporary file/g);
      let killSent = false;
      let unexpectedExit = false;
      void server.exited.then(() => {
        if (!killSent) unexpectedExit = true;
      });
      const clients = [0, 1].map(
        () =>
          new KvClient({ host: '127.0.0.1', port: server.port, reconnect: false, requestTimeoutMs: 10_000 }),
      );
      const admin = new KvClient({
        host: '127.0.0.1',
        port: server.port,
        reconnect: false,
        requestTimeoutMs: 10_000,
      });
      const reportedBefore = c.violations.length;
      try {
        // 1. What survived the previous kill.
        verify(await readAll(clients[0]!), acked, inflight, c, `${mode} cycle ${cycle}`, false);
      } catch (err) {
        c.violations.push(`${mode} cycle ${cycle}: could not read after restart: ${(err as Error).message}`);
      }
      const cut = c.sabotaged.at(-1);
      const report =
        cut?.cycle === cycle - 1 ? reportOf(cut.witness, c.violations.slice(reportedBefore)) : undefined;
      if (cut && report !== undefined) cut.reported = report;
      // 2. The workload, until the kill.
      let stop = false;
      let ackedThisCycle = 0;
      const worker = async (w: number) => {
        const wr = rng(o.seed * 7919 + cycle * 104729 + w * 31 + (mode === 'always' ? 0 : 17));
        const client = clients[w % clients.length]!;
        for (let seq = 0; !stop && seq < 100_000; seq++) {
          const version = `c${cycle}.w${w}.s${seq}`;
          const pad = '.'.repeat(Math.floor(wr() * 200));
          const val = (k: string) => `${k}=${version}|${pad}`;
          const r = wr();
          let effects: [string, string | null][];
          let run: () => Promise<unknown>;
          if (r < 0.5) {
            const k = plainKey(w, Math.floor(wr() * KEYS_PER_WORKER));
            effects = [[k, version]];
            run = () => client.set(k, val(k));
          } else if (r < 0.65) {
            const k = plainKey(w, Math.floor(wr() * KEYS_PER_WORKER));
            effects = [[k, null]];
            run = () => client.del(k);
          } else if (r < 0.9) {
            const ks = groupKeys(w, Math.floor(wr() * GROUPS_PER_WORKER));
            effects = ks.map((k) => [k, version]);
            run = () => client.mset(ks.map((k) => [k, val(k)] as const));
          } else {
            const ks = groupKeys(w, Math.floor(wr() * GROUPS_PER_WORKER));
            effects = ks.map((k) => [k, null]);
            run = () => client.del(ks);
          }
          for (const [k, v] of effects) inflight.set(k, v);
          c.opsIssued++;
          try {
            await run();
          } catch (err) {
            // Refused before the kill: the store stopped accepting writes (an EBADF fsync did that).
            if (!killSent) {
              c.violations.push(
                `${mode} cycle ${cycle}: a write was refused before the kill: ${(err as Error).message}`,
              );
            }
            return; // the kill: this operation stays in flight (it may or may not have landed)
          }
          c.writesAcked++;
          ackedThisCycle++;
          for (const [k, v] of effects) {
            acked.set(k, v);
            inflight.delete(k);
          }
        }
      };
      const workers = Array.from({ length: WORKERS }, (_, w) => worker(w));
      const sabotaging = o.sabotage && !last;
      // A sabotaged kill follows no COMPACT: its seal of the active segment would race the witness.
      const afterCompact = rand() < 0.35 && !sabotaging;
      await sleep(30 + Math.floor(rand() * 500));
      let witness: Witness | undefined;
      if (sabotaging) {
        const until = Date.now() + SABOTAGE_WAIT_MS;
        while (ackedThisCycle < SABOTAGE_MIN_ACKED && Date.now() < until) await sleep(10);
        stop = true;
        await Promise.all(workers);
        try {
          witness = await writeWitness(clients[0]!, cycle, acked, c);
        } catch (err) {
          c.violations.push(
            `${mode} cycle ${cycle}: the witness write was refused: ${(err as Error).message}`,
          );
        }
      }
      if (last) {
        stop = true;
        await Promise.all(workers);
        await Promise.all([...clients, admin].map((x) => x.close().catch(() => {})));
        killSent = true;
        server.proc.kill('SIGTERM');
      } else {
        if (afterCompact) {
          admin.compact().catch(() => {});
          await sleep(Math.floor(rand() * 25));
          c.killsAfterCompact++;
        }
        killSent = true;
        server.proc.kill('SIGKILL');
        c.kills++;
        stop = true;
        await Promise.all(workers);
      }
      const exit = await Promise.race([server.exited, deadlineAfter(30_000).then(() => undefined)]);
      if (exit === undefined) {
        server.proc.kill('SIGKILL');
        c.violations.push(`${mode} cycle ${cycle}: kv-server did not exit within 30 s`);
      }
      await Promise.all([...clients, admin].map((x) => x.close().catch(() => {})));
      if (unexpectedExit || (exit && exit.signal !== 'SIGKILL' && exit.code !== 0)) {
        c.crashes++;
        c.violations.push(`${mode} cycle ${cycle}: kv-server exited on its own: ${JSON.stringify(exit)}`);
      }
      const all = server.stderr();
      for (const m of all.match(/[^\n]*"msg":"fsync failed[^\n]*/g) ?? []) {
        c.violations.push(`${mode} cycle ${cycle}: ${m.slice(0, 300)}`);
      }
      const started = count(all, /"msg":"compaction started"/g);
      const done = count(all, /"msg":"compaction reclaimed/g);
      c.compactionsDone += done;
      if (!last && started > done) c.compactionsKilledMidRun++;
      const segs = readdirSync(dir).filter((n) => n.endsWith('.seg')).length;
      // Lose the newest acknowledged writes on purpose: the checker must report them.
      if (witness) c.sabotaged.push({ cycle, witness, cut: cutLogEnd(dir, witness, acked, versionOf) });
      maxSegments = Math.max(maxSegments, segs);
      c.cycles++;
      if (last) {
        // 3. A clean restart after SIGTERM: the state must be exactly the acknowledged one.
        const again = await startServerRetrying(dir, mode);
        const client = new KvClient({ host: '127.0.0.1', port: again.port, reconnect: false });
        try {
          verify(await readAll(client), acked, inflight, c, `${mode} final`, true);
        } finally {
          await client.close().catch(() => {});
          again.proc.kill('SIGTERM');
          await Promise.race([again.exited, deadlineAfter(15_000)]);
          again.proc.kill('SIGKILL');
        }
        break;
      }
      if (!o.quick || cycle % 4 === 0) {
        process.stderr.write(
          `torture ${mode}: cycle ${cycle + 1}/${o.cycles}, ${c.writesAcked} writes acked, ${c.violations.length} violations, ${segs} segments\n`,
        );
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  c.rotationsSeen = maxSegments;
  return c;
}

/** One sabotaged cycle: what its cut took, and what the checker said of its witness. */
function sabotageLine(mode: Mode, s: Counters['sabotaged'][number]): string {
  const { cut, witness } = s;
  return (
    `SABOTAGE ${mode} cycle ${s.cycle}: cut ${cut.segment} from ${cut.sizeBefore} to ${cut.sizeAfter} bytes ` +
    `(${cut.records} records, ${cut.latestAcked} of them the latest acknowledged write of their key), ` +
    `the last the witness ${witness.key}=${witness.version}; ` +
    (s.reported === undefined ? 'the checker did NOT report it' : `reported: ${s.reported}`)
  );
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  const started = Date.now();
  process.stderr.write(
    `torture: ${o.cycles} cycles per mode (${o.modes.join(', ')}), seed ${o.seed}, ${WORKERS} workers, segments ${SEGMENT_BYTES} B\n`,
  );
  const results: [Mode, Counters][] = [];
  for (const mode of o.modes) results.push([mode, await runMode(mode, o)]);
  const rows = [
    [
      'mode',
      'cycles',
      'SIGKILLs',
      'kills after COMPACT',
      'ops issued',
      'writes acked',
      'keys checked',
      'acked values verified',
      'in-flight landed / lost',
      'crashes',
      'violations',
    ],
  ];
  for (const [mode, c] of results) {
    rows.push([
      mode,
      String(c.cycles),
      String(c.kills),
      String(c.killsAfterCompact),
      String(c.opsIssued),
      String(c.writesAcked),
      String(c.keysChecked),
      String(c.ackedVerified),
      `${c.inflightLanded} / ${c.inflightLost}`,
      String(c.crashes),
      String(c.violations.length),
    ]);
  }
  for (const [mode, c] of results) {
    for (const s of c.sabotaged) process.stdout.write(`${sabotageLine(mode, s)}\n`);
  }
  const violations = results.flatMap(([, c]) => c.violations);
  for (const v of violations.slice(0, 50)) process.stdout.write(`VIOLATION ${v}\n`);
  process.stdout.write(
    `\ntorture summary (seed ${o.seed}, ${((Date.now() - started) / 1000).toFixed(1)} s)\n`,
  );
  process.stdout.write(`${markdownTable(rows)}\n`);
  for (const [mode, c] of results) {
    process.stdout.write(
      `${mode}: compactions completed ${c.compactionsDone}, killed mid-compaction ${c.compactionsKilledMidRun}, ` +
        `swaps finished at recovery ${c.swapsFinishedAtRecovery}, temp files swept ${c.tempFilesSwept}, ` +
        `torn tails truncated ${c.tornTailsRecovered}, most segments on disk ${c.rotationsSeen}\n`,
    );
    if (o.sabotage) {
      const reported = c.sabotaged.filter((s) => s.reported !== undefined).length;
      process.stdout.write(
        `${mode}: sabotage: ${c.sabotaged.length} cuts, witness reported after ${reported}\n`,
      );
    }
  }
  process.stdout.write(
    'promise checked: every acknowledged write survives SIGKILL in both modes (records reach the OS before the ack), ' +
      'no half mset, no resurrected delete, no value never written.\n',
  );
  process.exitCode = violations.length > 0 ? 1 : 0;
}

runHarness('torture', main);
