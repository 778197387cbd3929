/**
 * The measurements of bench:replication (tools/bench/replication.ts), each on
 * fresh processes: a primary and its replicas of one store (kv-server
 * `--replica-of`, redis-server `--replicaof`), linked before the clock starts.
 *
 *   setRun     kv-bench -t set against the primary for a duration, after
 *              `warmupS` seconds of the same load not recorded (its own
 *              kv-bench run, then the replicas let catch up: the CPU per
 *              SET is of the measured run alone); with `lag`, the
 *              primary's and every replica's offset are polled meanwhile
 *              (Replication lag below).
 *   resyncRun  N keys written to a primary (kv-bench --prefill: MSET of 100),
 *              then an empty server told REPLICAOF it; wall time until the
 *              replica's link is up with the primary's whole log, and the
 *              primary's VmRSS sampled every RSS_SAMPLE_MS meanwhile (Redis:
 *              and its fork child's private memory, /proc/PID/smaps_rollup).
 *
 * Replication lag: every `pollMs` the primary's log end and each replica's
 * offset are read at once (segkv: ROLE `end`; Redis: INFO replication
 * master_repl_offset on the primary, slave_repl_offset on the replica). Lag
 * in records is primary − replica per sample (Redis counts bytes of its
 * replication stream: divided by the stream's bytes per SET in that run).
 * Lag in ms, per primary sample: how long until the replica's offset reached
 * what the primary's was then (interpolated between polls).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { KvClient } from '../../src/index.js';
import type { TestResult } from '../lib/load.js';
import type { TempRoot } from './lib.js';
import { freePort, parseInfo, RespClient } from './redis-peer.js';
import { cpuMs, kvBench, rssBytes, ServerProc, type Store, settledRss } from './server-procs.js';

/** How often the primary's RSS is read during a full resync, and the replica asked whether it is done, ms. */
const RSS_SAMPLE_MS = 20;
/** How long a replica may take to link before a run fails, ms. */
const LINK_TIMEOUT_MS = 60_000;
/** After the load stops, how long the poller waits for the replicas to catch up, ms. */
const DRAIN_MS = 5_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A primary and its replicas; `stop()` ends them all. */
export interface Topology {
  store: Store;
  primary: ServerProc;
  replicas: ServerProc[];
  stop(): Promise<void>;
}

/** Servers still running, killed if the benchmark is interrupted. */
export const live = new Set<ServerProc>();

async function startServer(
  store: Store,
  bin: string,
  root: TempRoot,
  label: string,
  extra: string[],
): Promise<ServerProc> {
  const srv = await ServerProc.start(store, bin, root.dir(label), 'interval', await freePort(), extra);
  live.add(srv);
  return srv;
}

async function stopServer(srv: ServerProc): Promise<void> {
  await srv.stop();
  live.delete(srv);
}

/** Redis's own options for a primary: no 5 s wait for more replicas before a full sync (Debian's default). */
const REDIS_PRIMARY = ['--repl-diskless-sync-delay', '0'];

/**
 * Starts a primary (`primaryExtra`: kv-server flags, e.g. --min-replicas-ack)
 * and `replicas` replicas of it, and waits until every replica is linked.
 */
export async function startTopology(
  store: Store,
  bin: string,
  root: TempRoot,
  replicas: number,
  primaryExtra: string[] = [],
): Promise<Topology> {
  const primary = await startServer(
    store,
    bin,
    root,
    `${store}-primary`,
    store === 'redis' ? REDIS_PRIMARY : primaryExtra,
  );
  const reps: ServerProc[] = [];
  const t: Topology = {
    store,
    primary,
    replicas: reps,
    stop: async () => {
      for (const r of reps) await stopServer(r);
      await stopServer(primary);
    },
  };
  try {
    const of =
      store === 'segkv'
        ? ['--replica-of', `127.0.0.1:${primary.port}`]
        : ['--replicaof', '127.0.0.1', String(primary.port)];
    const started = await Promise.allSettled(
      Array.from({ length: replicas }, (_, i) => startServer(store, bin, root, `${store}-replica${i}`, of)),
    );
    for (const s of started) if (s.status === 'fulfilled') reps.push(s.value);
    for (const s of started) if (s.status === 'rejected') throw s.reason;
    const deadline = Date.now() + LINK_TIMEOUT_MS;
    while (!(await linked(t))) {
      if (Date.now() > deadline) throw new Error(`${store}: ${replicas} replicas not linked within 60 s`);
      await sleep(50);
    }
  } catch (err) {
    await t.stop();
    throw err;
  }
  return t;
}

/** Every replica's link is up and the primary counts them all. */
async function linked(t: Topology): Promise<boolean> {
  const n = t.replicas.length;
  if (t.store === 'segkv') {
    const c = segkvClient(t.primary.port);
    try {
      const info = (await c.info('replication')).replication as { connectedReplicas: number };
      if (info.connectedReplicas !== n) return false;
      for (const r of t.replicas) if (!(await segkvLinkUp(r.port))) return false;
      return true;
    } finally {
      await c.close();
    }
  }
  const info = await redisInfo(t.primary.port, 'replication');
  if (Number(info.get('connected_slaves')) !== n) return false;
  for (let i = 0; i < n; i++) if (!info.get(`slave${i}`)?.includes('state=online')) return false;
  return true;
}

function segkvClient(port: number): KvClient<string> {
  return new KvClient<string>({ port, reconnect: false, requestTimeoutMs: 60_000 });
}

async function segkvLinkUp(port: number): Promise<boolean> {
  const c = segkvClient(port);
  try {
    return (await c.role()).link === 'up';
  } finally {
    await c.close();
  }
}

async function redisInfo(port: number, section: string): Promise<Map<string, string>> {
  const c = await RespClient.connect(port);
  try {
    return parseInfo(await c.command(['INFO', section]));
  } finally {
    c.close();
  }
}

/** Reads one server's replication offset over a connection kept open. */
interface OffsetProbe {
  read(): Promise<number>;
  close(): Promise<void>;
}

async function offsetProbe(store: Store, port: number, role: 'primary' | 'replica'): Promise<OffsetProbe> {
  if (store === 'segkv') {
    const c = segkvClient(port);
    return { read: async () => (await c.role()).end, close: () => c.close() };
  }
  const c = await RespClient.connect(port);
  const field = role === 'primary' ? 'master_repl_offset' : 'slave_repl_offset';
  return {
    read: async () => Number(parseInfo(await c.command(['INFO', 'replication'])).get(field)),
    close: async () => c.close(),
  };
}

/** One poll: when it was sent (ms, performance.now()), the primary's offset, each replica's. */
interface Sample {
  at: number;
  primary: number;
  replicas: number[];
}

/** Lag figures of one run (one replica). */
export interface LagStats {
  /** Records behind the primary: p50, p99, max over the samples taken under load. */
  records: { p50: number; p99: number; max: number };
  /** ms until the replica had what the primary had: p50, p99, max. */
  ms: { p50: number; p99: number; max: number };
  samples: number;
  /** Redis: bytes of its replication stream per SET (offsets count bytes); segkv: 1. */
  unitsPerRecord: number;
}

/** Polls every `pollMs` until `stop()`; then until the replicas catch up (at most DRAIN_MS). */
class LagPoller {
  readonly samples: Sample[] = [];
  private stopping = false;
  private loadEndedAt = Number.POSITIVE_INFINITY;
  private readonly done: Promise<void>;

  constructor(
    private readonly primary: OffsetProbe,
    private readonly replicas: OffsetProbe[],
    private readonly pollMs: number,
  ) {
    this.done = this.loop();
  }

  private async loop(): Promise<void> {
    for (;;) {
      const at = performance.now();
      const [primary, ...replicas] = await Promise.all([
        this.primary.read(),
        ...this.replicas.map((r) => r.read()),
      ]);
      this.samples.push({ at, primary: primary!, replicas });
      if (this.stopping) {
        const caughtUp = replicas.every((r) => r >= primary!);
        if (caughtUp || at - this.loadEndedAt > DRAIN_MS) return;
      }
      const wait = this.pollMs - (performance.now() - at);
      if (wait > 0) await sleep(wait);
    }
  }

  /** The load has ended; resolves when the poller has. */
  async stop(): Promise<void> {
    this.loadEndedAt = performance.now();
    this.stopping = true;
    await this.done;
  }

  /** Lag of replica `i`, from the samples taken while the load ran. */
  stats(i: number, unitsPerRecord: number): LagStats {
    const s = this.samples;
    const records: number[] = [];
    const ms: number[] = [];
    for (let k = 0; k < s.length; k++) {
      const p = s[k]!;
      if (p.at > this.loadEndedAt) break;
      records.push(Math.max(0, p.primary - p.replicas[i]!) / unitsPerRecord);
      // When did the replica reach p.primary? The first later sample at or past it, interpolated.
      let j = k;
      while (j < s.length && s[j]!.replicas[i]! < p.primary) j++;
      if (j === s.length) continue; // never within the drain: left out (the max below says so)
      if (j === k) {
        ms.push(0);
        continue;
      }
      const a = s[j - 1]!;
      const b = s[j]!;
      const ra = a.replicas[i]!;
      const rb = b.replicas[i]!;
      const crossed = rb > ra ? a.at + ((p.primary - ra) / (rb - ra)) * (b.at - a.at) : b.at;
      ms.push(Math.max(0, crossed - p.at));
    }
    const pick = (xs: number[]) => {
      const sorted = [...xs].sort((x, y) => x - y);
      const q = (f: number) =>
        sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(f * sorted.length) - 1)]! : Number.NaN;
      return { p50: q(0.5), p99: q(0.99), max: sorted.length ? sorted[sorted.length - 1]! : Number.NaN };
    };
    return { records: pick(records), ms: pick(ms), samples: records.length, unitsPerRecord };
  }
}

export interface SetRunOptions {
  clients: number;
  pipeline: number;
  valueBytes: number;
  keys: number;
  durationS: number;
  /**
   * Seconds of the same load first, not recorded (0: none), then the
   * replicas let catch up (at most DRAIN_MS): a fresh kv-server counted its
   * JIT compilation and its keydir's first inserts in the measured run.
   */
  warmupS: number;
  seed: number;
  /** kv-bench --wait N: every batch ends with WAIT N 0. */
  wait?: number | undefined;
  /** Poll offsets every this many ms meanwhile (0: no lag figures). */
  lagPollMs: number;
}

export interface SetRunResult {
  result: TestResult;
  /** Per replica, when polled. */
  lag: LagStats[];
  /**
   * CPU time (user + system, /proc/PID/stat) per acknowledged SET during the
   * run, µs: the primary's, and each replica's. Unlike ops/s, it does not
   * depend on how the shared machine scheduled the processes.
   */
  cpuUsPerSet: { primary: number; replicas: number[] };
}

/** An offset probe on the primary and one on each replica, for `fn`; closed after it. */
async function withProbes<T>(
  t: Topology,
  fn: (primary: OffsetProbe, replicas: OffsetProbe[]) => Promise<T>,
): Promise<T> {
  const primary = await offsetProbe(t.store, t.primary.port, 'primary');
  const replicas = await Promise.all(t.replicas.map((r) => offsetProbe(t.store, r.port, 'replica')));
  try {
    return await fn(primary, replicas);
  } finally {
    await primary.close();
    for (const r of replicas) await r.close();
  }
}

/** Waits until every replica has the primary's log end, at most DRAIN_MS: a LagPoller's drain with no load before it. */
async function caughtUp(t: Topology): Promise<void> {
  if (t.replicas.length === 0) return;
  await withProbes(t, (primary, replicas) => new LagPoller(primary, replicas, 10).stop());
}

/** kv-bench -t set against the topology's primary, after the warm-up, with lag polling if asked. */
export async function setRun(t: Topology, o: SetRunOptions): Promise<SetRunResult> {
  const load = (seconds: number) => [
    ...['-t', 'set', '-c', String(o.clients), '-P', String(o.pipeline), '-d', String(o.valueBytes)],
    ...['-r', String(o.keys), '--duration', String(seconds), '--seed', String(o.seed)],
    ...(o.wait === undefined ? [] : ['--wait', String(o.wait)]),
  ];
  if (o.warmupS > 0) {
    await kvBench(t.store, t.primary.port, load(o.warmupS));
    await caughtUp(t);
  }
  const args = load(o.durationS);
  const pids = [t.primary, ...t.replicas].map((srv) => srv.proc.pid!);
  const cpuBefore = pids.map((pid) => cpuMs(pid));
  const cpuPerSet = (result: TestResult) => {
    const per = pids.map((pid, i) => ((cpuMs(pid) - cpuBefore[i]!) * 1000) / Math.max(1, result.requests));
    return { primary: per[0]!, replicas: per.slice(1) };
  };
  if (o.lagPollMs <= 0 || t.replicas.length === 0) {
    const report = await kvBench(t.store, t.primary.port, args);
    const result = report.results[0]!;
    return { result, lag: [], cpuUsPerSet: cpuPerSet(result) };
  }
  return withProbes(t, async (primary, replicas) => {
    const before = await primary.read();
    const poller = new LagPoller(primary, replicas, o.lagPollMs);
    let report: Awaited<ReturnType<typeof kvBench>>;
    try {
      report = await kvBench(t.store, t.primary.port, args);
    } finally {
      await poller.stop();
    }
    const result = report.results[0]!;
    const cpuUsPerSet = cpuPerSet(result);
    const after = await primary.read();
    // segkv offsets count records; Redis's count bytes of the replication stream.
    const units = t.store === 'segkv' ? 1 : (after - before) / Math.max(1, result.requests);
    return { result, lag: t.replicas.map((_, i) => poller.stats(i, units)), cpuUsPerSet };
  });
}

export interface ResyncResult {
  keys: number;
  /** ms from REPLICAOF until the replica's link was up with the whole log. */
  ms: number;
  /**
   * ms from REPLICAOF until the replica also has it on disk (per its fsync
   * setting): segkv applies into its log, so = ms; a Redis replica with
   * appendonly yes writes its first AOF (a rewrite) after the sync.
   */
  persistedMs: number;
  /** The primary's VmRSS before (settled after writing the keys), and the most seen during the resync. */
  rssBeforeBytes: number;
  rssPeakBytes: number;
  /** (peak − before) / before. */
  rssGrowth: number;
  /** Redis: the most private memory (Private_Clean + Private_Dirty) of its fork child; segkv: 0. */
  childPrivatePeakBytes: number;
  /** Keys on the replica at the end (DBSIZE): must equal `keys`. */
  replicaKeys: number;
  /** CPU time from REPLICAOF until caught up, ms: the primary's (Redis: with its fork child), the replica's. */
  cpuMs: { primary: number; replica: number };
}

/** Private memory (clean + dirty) of each child process of `pid`, summed; 0 if none. */
function childPrivateBytes(pid: number): number {
  let total = 0;
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const kids = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8')
        .trim()
        .split(/\s+/)
        .filter(Boolean);
      for (const kid of kids) {
        const text = readFileSync(`/proc/${kid}/smaps_rollup`, 'utf8');
        for (const m of text.matchAll(/^Private_(?:Clean|Dirty):\s+(\d+) kB/gm)) total += Number(m[1]) * 1024;
      }
    }
  } catch {
    // the child ended between the reads
  }
  return total;
}

/** N keys written to a fresh primary, then a fresh empty server made its replica: see the file header. */
export async function resyncRun(
  store: Store,
  bin: string,
  root: TempRoot,
  keys: number,
  valueBytes: number,
  log: (msg: string) => void,
): Promise<ResyncResult> {
  const t = await startTopology(store, bin, root, 0);
  let replica: ServerProc | undefined;
  try {
    const t0 = performance.now();
    await kvBench(store, t.primary.port, [
      ...['--prefill', '-r', String(keys), '-c', '16', '-P', '16', '-d', String(valueBytes)],
      ...['-t', 'ping', '-n', '1'],
    ]);
    log(`${store}: ${keys} keys written in ${((performance.now() - t0) / 1000).toFixed(1)} s; RSS settling`);
    await sleep(1500); // one interval/everysec sync
    const pid = t.primary.proc.pid!;
    const settleStart = performance.now();
    const rssBefore = await settledRss(t.primary);
    log(
      `${store}: primary RSS ${(rssBefore / 2 ** 20).toFixed(0)} MiB, settled in ${((performance.now() - settleStart) / 1000).toFixed(1)} s; REPLICAOF`,
    );
    replica = await startServer(store, bin, root, `${store}-resync-replica`, []);
    let peak = rssBefore;
    let childPeak = 0;
    const sampler = setInterval(() => {
      peak = Math.max(peak, rssBytes(pid));
      if (store === 'redis') childPeak = Math.max(childPeak, childPrivateBytes(pid));
    }, RSS_SAMPLE_MS);
    let ms: number;
    let persistedMs: number;
    let replicaKeys: number;
    const replicaPid = replica.proc.pid!;
    const cpuBefore = [cpuMs(pid, true), cpuMs(replicaPid)];
    let cpuAfter: number[] = [];
    try {
      if (store === 'segkv') {
        const pc = segkvClient(t.primary.port);
        const rc = segkvClient(replica.port);
        try {
          const end = (await pc.role()).end;
          const started = performance.now();
          await rc.replicaOf({ host: '127.0.0.1', port: t.primary.port });
          for (;;) {
            const r = await rc.role();
            if (r.link === 'up' && r.end >= end) break;
            await sleep(RSS_SAMPLE_MS);
          }
          ms = performance.now() - started;
          cpuAfter = [cpuMs(pid, true), cpuMs(replicaPid)];
          persistedMs = ms; // in its log (per --fsync) as it is applied
          replicaKeys = await rc.dbsize();
        } finally {
          await pc.close();
          await rc.close();
        }
      } else {
        const rc = await RespClient.connect(replica.port);
        try {
          const started = performance.now();
          await rc.command(['REPLICAOF', '127.0.0.1', String(t.primary.port)]);
          for (;;) {
            const info = parseInfo(await rc.command(['INFO', 'replication']));
            if (info.get('master_link_status') === 'up' && info.get('master_sync_in_progress') === '0') break;
            await sleep(RSS_SAMPLE_MS);
          }
          ms = performance.now() - started;
          cpuAfter = [cpuMs(pid, true), cpuMs(replicaPid)];
          replicaKeys = Number(await rc.command(['DBSIZE']));
          // A replica with appendonly yes writes its first AOF after the sync (and refuses SIGTERM until then).
          for (;;) {
            const p = parseInfo(await rc.command(['INFO', 'persistence']));
            if (p.get('aof_rewrite_in_progress') === '0' && p.get('aof_rewrite_scheduled') === '0') break;
            await sleep(RSS_SAMPLE_MS);
          }
          persistedMs = performance.now() - started;
        } finally {
          rc.close();
        }
      }
    } finally {
      clearInterval(sampler);
    }
    peak = Math.max(peak, rssBytes(pid));
    return {
      keys,
      ms,
      persistedMs,
      rssBeforeBytes: rssBefore,
      rssPeakBytes: peak,
      rssGrowth: (peak - rssBefore) / rssBefore,
      childPrivatePeakBytes: childPeak,
      replicaKeys,
      cpuMs: { primary: cpuAfter[0]! - cpuBefore[0]!, replica: cpuAfter[1]! - cpuBefore[1]! },
    };
  } finally {
    const stopStart = performance.now();
    if (replica) await stopServer(replica);
    await t.stop();
    log(`${store}: servers stopped in ${((performance.now() - stopStart) / 1000).toFixed(1)} s`);
  }
}
