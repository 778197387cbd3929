/**
 * Server processes for the benchmarks that drive kv-server and redis-server
 * over the wire (bench:server, bench:replication): spawn one on a loopback
 * port and its own directory and wait until it serves with all data loaded,
 * read its RSS from /proc, stop it; and run kv-bench (the same load
 * generator for both stores) as a child process for its --json report.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KvClient } from '../../src/index.js';
import type { BenchReport } from '../kv-bench.js';
import { probe } from '../lib/load.js';
import { segkvWire } from '../lib/wire.js';
import { BENCH_DIST_DIR, logLine } from './lib.js';
import {
  aptInstallRedis,
  findRedisServer,
  killProcess,
  parseInfo,
  RespClient,
  redisServerArgs,
  stopProcess,
} from './redis-peer.js';

export const KV_SERVER = join(BENCH_DIST_DIR, '..', '..', 'src', 'server', 'main.js');
export const KV_BENCH = join(BENCH_DIST_DIR, '..', 'kv-bench.js');

/** Durability pair: segkv --fsync interval vs Redis appendfsync everysec, or always vs always. */
export type Mode = 'interval' | 'always';
export type Store = 'segkv' | 'redis';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** redis-server on PATH (or given), installed from Debian if missing and we may; undefined = skip the peer. */
export function redisBinary(explicit: string | undefined, tag: string): string | undefined {
  const found = findRedisServer(explicit);
  if (found) return found;
  logLine(tag, 'redis-server not found: trying apt-get update && apt-get install -y redis-server');
  const status = aptInstallRedis();
  if (status !== 0)
    logLine(tag, `installing redis-server failed (exit ${status}); the Redis peer is SKIPPED`);
  return findRedisServer();
}

/** VmRSS of a process in bytes (Linux), or NaN. */
export function rssBytes(pid: number): number {
  return statusBytes(pid, 'VmRSS');
}

/**
 * RssFile of a process in bytes (Linux), or NaN: the part of its RSS that is
 * file pages (its binary and libraries, shared with every process that maps
 * them; ~42 MiB of node's own against a few of redis-server's).
 */
export function rssFileBytes(pid: number): number {
  return statusBytes(pid, 'RssFile');
}

/** Clock ticks per second of /proc/PID/stat's times. */
const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/**
 * CPU time a process has used so far (user + system, all its threads, those
 * that ended included), ms, with that of its children it has waited for
 * (Redis's fork) if asked; NaN if it is gone. Clock ticks (10 ms): good to
 * ~1% over a run of seconds.
 */
export function cpuMs(pid: number, children = false): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "(comm) ": state is field 3, utime 14, stime 15, cutime 16, cstime 17.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const own = Number(f[11]) + Number(f[12]);
    return ((own + (children ? Number(f[13]) + Number(f[14]) : 0)) * 1000) / CLOCK_TICKS;
  } catch {
    return Number.NaN;
  }
}

function statusBytes(pid: number, field: string): number {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/**
 * A server's log upkeep so far, read before and after each bench:server run so
 * a row says which runs held some (upkeepDuring): segkv's active segment (the
 * highest base offset among its `.seg` files: a seal at 64 MiB changes it) and
 * its compactions (INFO compaction: runs finished, one running); Redis's AOF
 * rewrites (INFO persistence: aof_rewrites, aof_rewrite_in_progress).
 */
export interface Upkeep {
  /** segkv: the active segment's base offset; Redis: 0. */
  activeSegment: number;
  /** Compactions (segkv) or AOF rewrites (Redis) finished. */
  rewrites: number;
  /** One is running now. */
  rewriting: boolean;
}

/** The upkeep that happened between two readings of one server: 'seal', 'compaction', 'aof-rewrite'. */
export function upkeepDuring(store: Store, before: Upkeep, after: Upkeep): string[] {
  const out: string[] = [];
  if (after.activeSegment !== before.activeSegment) out.push('seal');
  if (after.rewrites !== before.rewrites || before.rewriting || after.rewriting)
    out.push(store === 'segkv' ? 'compaction' : 'aof-rewrite');
  return out;
}

/** The highest base offset among `dir`'s segment files (their names), -1 if none. */
export function activeSegmentBase(dir: string): number {
  let top = -1;
  for (const name of readdirSync(dir)) {
    const m = /^(\d+)\.seg$/.exec(name);
    if (m) top = Math.max(top, Number(m[1]));
  }
  return top;
}

/** `store`'s log upkeep so far: the server on `port`, its data in `dir` (Upkeep). */
export async function readUpkeep(store: Store, port: number, dir: string): Promise<Upkeep> {
  if (store === 'segkv') {
    const c = new KvClient<string>({ host: '127.0.0.1', port, reconnect: false, requestTimeoutMs: 60_000 });
    try {
      const k = (await c.info('compaction')).compaction as {
        runs?: number;
        failures?: number;
        running?: boolean;
      };
      return {
        activeSegment: activeSegmentBase(dir),
        rewrites: (k.runs ?? 0) + (k.failures ?? 0),
        rewriting: k.running === true,
      };
    } finally {
      await c.close();
    }
  }
  const c = await RespClient.connect(port);
  try {
    const p = parseInfo(await c.command(['INFO', 'persistence']));
    return {
      activeSegment: 0,
      rewrites: Number(p.get('aof_rewrites') ?? 0),
      rewriting: p.get('aof_rewrite_in_progress') === '1',
    };
  } finally {
    c.close();
  }
}

/** A server process of either kind, on a loopback port, on its own directory. */
export class ServerProc {
  private constructor(
    readonly store: Store,
    readonly proc: ChildProcess,
    readonly port: number,
    /** ms from spawn until it served PING with all data loaded. */
    readonly readyMs: number,
    /** Its data directory. */
    readonly dir: string,
  ) {}

  /** Its log upkeep so far (Upkeep). */
  upkeep(): Promise<Upkeep> {
    return readUpkeep(this.store, this.port, this.dir);
  }

  /**
   * Starts `store` (`bin` is redis-server's path) on `dir` and `port`;
   * `extra` arguments go to the end of its command line (kv-server flags,
   * or redis-server `--option value` pairs).
   */
  static async start(
    store: Store,
    bin: string,
    dir: string,
    mode: Mode,
    port: number,
    extra: readonly string[] = [],
  ): Promise<ServerProc> {
    const args =
      store === 'segkv'
        ? [
            KV_SERVER,
            '--dir',
            dir,
            '--host',
            '127.0.0.1',
            '--port',
            String(port),
            '--fsync',
            mode,
            '--log-level',
            'warn',
            ...extra,
          ]
        : redisServerArgs(port, dir, mode === 'always' ? 'always' : 'everysec', extra);
    // BENCH_SERVER_NODE_ARGS: node flags for kv-server, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
    if (store === 'segkv')
      args.unshift(...(process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean));
    const t0 = performance.now();
    const proc = spawn(store === 'segkv' ? process.execPath : bin, args, {
      stdio: ['ignore', 'ignore', store === 'segkv' ? 'inherit' : 'ignore'],
    });
    let exited = false;
    proc.once('exit', () => {
      exited = true;
    });
    const deadline = Date.now() + 600_000;
    for (;;) {
      if (exited) throw new Error(`${store} server exited at start (dir ${dir})`);
      if (Date.now() > deadline) {
        proc.kill('SIGKILL');
        throw new Error(`${store} server not ready after 600 s`);
      }
      try {
        if (store === 'segkv') {
          // kv-server binds its port only once the keydir is loaded; a LOADING reply would also mean "not yet".
          if ((await probe(segkvWire, '127.0.0.1', port, 'PING')) === undefined) break;
        } else if (await redisLoaded(port)) break;
      } catch {
        // not listening yet
      }
      await sleep(5);
    }
    return new ServerProc(store, proc, port, performance.now() - t0, dir);
  }

  get rss(): number {
    return rssBytes(this.proc.pid!);
  }

  /** The server's own CPU time so far, ms (cpuMs; its child processes not counted). */
  get cpuMs(): number {
    return cpuMs(this.proc.pid!);
  }

  /** The file pages of `rss` (rssFileBytes). */
  get rssFile(): number {
    return rssFileBytes(this.proc.pid!);
  }

  /** SIGTERM (a clean shutdown: both sync their log) and wait for the exit. */
  async stop(): Promise<void> {
    await stopProcess(this.proc, 60_000);
  }

  killNow(): void {
    killProcess(this.proc);
  }
}

/**
 * RSS once the server is idle and its allocator has given back what the load
 * left behind (V8's memory reducer, jemalloc's decay): sampled every second
 * until it changes by less than 1% over 3 s, at most 30 s.
 */
export async function settledRss(srv: ServerProc): Promise<number> {
  const samples = [srv.rss];
  for (let i = 0; i < 30; i++) {
    await sleep(1000);
    samples.push(srv.rss);
    const n = samples.length;
    if (n >= 4 && Math.abs(samples[n - 1]! - samples[n - 4]!) < 0.01 * samples[n - 1]!) break;
  }
  return samples[samples.length - 1]!;
}

/** Redis answers PING and INFO persistence says loading:0. */
async function redisLoaded(port: number): Promise<boolean> {
  const c = await RespClient.connect(port);
  try {
    await c.command(['PING']);
    return parseInfo(await c.command(['INFO', 'persistence'])).get('loading') === '0';
  } catch {
    return false;
  } finally {
    c.close();
  }
}

/** Runs kv-bench in a child process with `args` and returns its --json report. */
export function kvBench(store: Store, port: number, args: string[]): Promise<BenchReport> {
  return new Promise((resolve, reject) => {
    const all = [KV_BENCH, '--json', '-p', String(port), '--target', store, ...args];
    const child = spawn(process.execPath, all, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.on('error', reject);
    // 'close', not 'exit': stdout may still hold data when the process has exited.
    child.on('close', (code) => {
      try {
        const report = JSON.parse(out) as BenchReport;
        if (code !== 0) reject(new Error(`kv-bench ${all.slice(1).join(' ')} exited ${code}: ${err.trim()}`));
        else resolve(report);
      } catch {
        reject(new Error(`kv-bench ${all.slice(1).join(' ')} exited ${code}: ${err.trim()}`));
      }
    });
  });
}
