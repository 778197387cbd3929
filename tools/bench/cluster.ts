/**
 * npm run bench:cluster — failover time, segkv on etcd vs Redis Sentinel,
 * measured in the same run (issue 13):
 *
 * - segkv: a private etcd, one shard of two kv-server nodes
 *   (`--cluster-lease-ms LEASE`); SIGKILL the primary, then SET on the
 *   replica every 10 ms until one is acknowledged.
 * - Redis: a master, a replica and three redis-sentinel processes (quorum 2,
 *   `down-after-milliseconds` = LEASE, Sentinel's defaults otherwise);
 *   SIGKILL the master, then ask a sentinel for the master every 10 ms and
 *   SET on it until one is acknowledged.
 *
 * Failover time = SIGKILL → first acknowledged write on the new primary.
 * Each round starts a fresh set of processes; the table shows medians.
 *
 * Then throughput (cluster-throughput.ts): SET and GET ops/s through the
 * cluster SDK with 1, 2 and 3 shards, each ratio against 1 shard.
 *
 *   npm run bench:cluster [-- --rounds 5 --lease-ms 2000 --duration-ms 3000 --runs 3 --inflight 64]
 *   (--quick: 2 failover rounds, 1 throughput run of 1 s per workload)
 */
import { type ChildProcess, execFile as execFileCb, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { SlotMap } from '../../src/cluster/slot-map.js';
import { createCluster } from '../../src/cluster/state.js';
import { encodeFrame, FrameReader, unpackr } from '../../src/protocol/frame.js';
import { etcdOnPath, freePort, startEtcd } from '../lib/etcd.js';
import { clusterThroughput, THROUGHPUT_KEYS, THROUGHPUT_VALUE_BYTES } from './cluster-throughput.js';
import {
  benchArgs,
  commandLine,
  formatTable,
  logLine,
  median,
  printTargets,
  runInfo,
  TempRoot,
  writeResults,
} from './lib.js';
import { findRedisServer, killProcess } from './redis-peer.js';

const HELP = `Usage: npm run bench:cluster -- [--rounds N] [--lease-ms MS] [--duration-ms MS] [--runs N]
                              [--inflight N] [--quick]

Failover time (SIGKILL of the primary → first acknowledged write on the new
one), segkv on etcd vs Redis Sentinel with the same detection timeout; then
SET/GET ops/s through connectCluster with 1, 2 and 3 shards (one primary
each), --runs runs of --duration-ms per workload, --inflight requests in
flight.
`;

const MAIN = resolve(import.meta.dirname, '../../src/server/main.js');
const POLL_MS = 10;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const execFile = promisify(execFileCb);

/** One request on a fresh native connection: true if acknowledged within 500 ms. */
function segkvSet(port: number): Promise<boolean> {
  return new Promise((done) => {
    const s = netConnect({ host: '127.0.0.1', port });
    const reader = new FrameReader(1 << 20);
    const finish = (ok: boolean) => {
      s.destroy();
      done(ok);
    };
    const timer = setTimeout(() => finish(false), 500);
    s.on('error', () => finish(false));
    s.on('connect', () => s.write(encodeFrame([1, 'SET', 'failover-probe', Buffer.from('x')])));
    s.on('data', (d) => {
      reader.push(d);
      const body = reader.next();
      if (body === undefined) return;
      clearTimeout(timer);
      const reply = unpackr.unpack(body) as unknown[];
      finish(reply.length === 2);
    });
  });
}

function spawnQuiet(cmd: string, args: string[]): ChildProcess {
  return spawn(cmd, args, { stdio: 'ignore' });
}

async function segkvRound(dir: string, leaseMs: number): Promise<number> {
  const etcd = await startEtcd(dir);
  const procs: ChildProcess[] = [];
  try {
    await createCluster(etcd.client(), 'bench', SlotMap.even(['s1']));
    const ports = [await freePort(), await freePort()];
    for (const [i, port] of ports.entries()) {
      procs.push(
        spawnQuiet(process.execPath, [
          MAIN,
          ...['--dir', join(dir, `n${i}`), '--port', String(port), '--log-level', 'error'],
          ...['--cluster', 'bench', '--etcd', etcd.url, '--shard', 's1', '--node-name', `n${i}`],
          ...['--cluster-lease-ms', String(leaseMs)],
        ]),
      );
    }
    // Which one leads: the one that acknowledges a write.
    let primary = -1;
    const deadline = Date.now() + 30_000;
    while (primary < 0) {
      if (Date.now() > deadline) throw new Error('segkv: no primary within 30 s');
      for (const [i, port] of ports.entries()) if (await segkvSet(port)) primary = i;
      await sleep(50);
    }
    await sleep(leaseMs); // the replica is linked and advertised
    const replicaPort = ports[1 - primary]!;
    const killedAt = performance.now();
    procs[primary]!.kill('SIGKILL');
    while (!(await segkvSet(replicaPort))) {
      if (performance.now() - killedAt > 60_000) throw new Error('segkv: no failover within 60 s');
      await sleep(POLL_MS);
    }
    return performance.now() - killedAt;
  } finally {
    for (const p of procs) killProcess(p);
    await etcd.stop();
  }
}

/** One command through redis-cli (it speaks every RESP reply type); its output lines, or undefined on failure. */
async function redisCli(port: number, args: string[]): Promise<string[] | undefined> {
  try {
    const { stdout } = await execFile('redis-cli', ['-p', String(port), ...args], { timeout: 1000 });
    return stdout.trim().split('\n');
  } catch {
    return undefined;
  }
}

async function sentinelRound(dir: string, leaseMs: number, redisServer: string): Promise<number> {
  const procs: ChildProcess[] = [];
  try {
    const master = await freePort();
    const replica = await freePort();
    const base = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'];
    procs.push(spawnQuiet(redisServer, ['--port', String(master), '--dir', dir, ...base]));
    procs.push(
      spawnQuiet(redisServer, [
        '--port',
        String(replica),
        '--dir',
        dir,
        '--replicaof',
        '127.0.0.1',
        String(master),
        ...base,
      ]),
    );
    const sentinels: number[] = [];
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      sentinels.push(port);
      const conf = join(dir, `sentinel-${i}.conf`);
      writeFileSync(
        conf,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${dir}`,
          `sentinel monitor m 127.0.0.1 ${master} 2`,
          `sentinel down-after-milliseconds m ${leaseMs}`,
          'sentinel failover-timeout m 60000',
          'sentinel parallel-syncs m 1',
          '',
        ].join('\n'),
      );
      procs.push(spawnQuiet(redisServer, [conf, '--sentinel']));
    }
    // Ready: the replica is in sync and every sentinel knows the replica and the other sentinels.
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (Date.now() > deadline) throw new Error('redis: sentinels not ready within 60 s');
      const info = await redisCli(replica, ['INFO', 'replication']);
      let known = info?.some((l) => l.startsWith('master_link_status:up')) === true;
      for (const s of sentinels) {
        const text = (await redisCli(s, ['SENTINEL', 'master', 'm'])) ?? [];
        const at = (k: string) => Number(text[text.indexOf(k) + 1] ?? 0);
        if (at('num-slaves') < 1 || at('num-other-sentinels') < 2) known = false;
      }
      if (known) break;
      await sleep(200);
    }
    const killedAt = performance.now();
    killProcess(procs[0]!);
    for (;;) {
      if (performance.now() - killedAt > 120_000) throw new Error('redis: no failover within 120 s');
      const addr = await redisCli(sentinels[0]!, ['SENTINEL', 'get-master-addr-by-name', 'm']);
      const port = addr?.length === 2 ? Number(addr[1]) : master;
      if (port !== master && (await redisCli(port, ['SET', 'failover-probe', 'x']))?.[0] === 'OK')
        return performance.now() - killedAt;
      await sleep(POLL_MS);
    }
  } finally {
    for (const p of procs) killProcess(p);
  }
}

async function main(): Promise<void> {
  const args = benchArgs(process.argv.slice(2), HELP, {
    rounds: { type: 'string' },
    'lease-ms': { type: 'string' },
    'duration-ms': { type: 'string' },
    runs: { type: 'string' },
    inflight: { type: 'string' },
    quick: { type: 'boolean' },
    out: { type: 'string' },
  });
  const quick = args.flag('quick');
  const rounds = args.int('rounds', quick ? 2 : 5, 1);
  const throughputOptions = {
    shardCounts: [1, 2, 3],
    durationMs: args.int('duration-ms', quick ? 1000 : 3000, 100),
    runs: args.int('runs', quick ? 1 : 3, 1),
    inflight: args.int('inflight', 64, 1),
  };
  const leaseMs = args.int('lease-ms', 2000, 1000);
  const started = new Date();
  if (!etcdOnPath()) throw new Error('etcd not found on PATH (install Debian package etcd-server)');
  const redisServer = findRedisServer();
  const root = new TempRoot('segkv-bench-cluster-');
  const roundDir = (label: string) => root.dir(label);
  try {
    const segkv: number[] = [];
    const redis: number[] = [];
    for (let r = 0; r < rounds; r++) {
      segkv.push(await segkvRound(roundDir('segkv'), leaseMs));
      logLine('cluster', `round ${r + 1}/${rounds}: segkv failover ${segkv.at(-1)!.toFixed(0)} ms`);
      if (redisServer) {
        redis.push(await sentinelRound(roundDir('redis'), leaseMs, redisServer));
        logLine(
          'cluster',
          `round ${r + 1}/${rounds}: redis sentinel failover ${redis.at(-1)!.toFixed(0)} ms`,
        );
      }
    }
    const ms = (xs: number[]) => (xs.length ? median(xs).toFixed(0) : '-');
    const range = (xs: number[]) =>
      xs.length ? `${Math.min(...xs).toFixed(0)}-${Math.max(...xs).toFixed(0)}` : '-';
    process.stdout.write(
      `\nfailover time, SIGKILL → first acknowledged write (detection timeout ${leaseMs} ms, ${rounds} rounds)\n`,
    );
    process.stdout.write(
      `${formatTable(
        ['system', 'setting', 'median ms', 'range ms'],
        [
          ['segkv on etcd', `--cluster-lease-ms ${leaseMs}`, ms(segkv), range(segkv)],
          ['Redis Sentinel', `down-after-milliseconds ${leaseMs}`, ms(redis), range(redis)],
        ],
      )}\n`,
    );
    const ratio = redis.length ? median(segkv) / median(redis) : Number.NaN;
    if (redis.length) process.stdout.write(`segkv / Sentinel: ${ratio.toFixed(2)}×\n`);
    const throughput = await clusterThroughput(roundDir('throughput'), throughputOptions);
    const peer = throughput[0]!;
    const base = throughput[1]!;
    process.stdout.write(
      `\nthroughput, ${throughputOptions.inflight} requests in flight from one process, ${THROUGHPUT_VALUE_BYTES} B values, ` +
        `${THROUGHPUT_KEYS} keys, median of ${throughputOptions.runs} × ${throughputOptions.durationMs} ms; ` +
        'cluster: connectCluster, one primary per shard; standalone: connect() to a kv-server outside cluster mode\n',
    );
    const times = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
    process.stdout.write(
      `${formatTable(
        ['setup', 'SET ops/s', 'vs 1 shard', 'vs standalone', 'GET ops/s', 'vs 1 shard', 'vs standalone'],
        throughput.map((t) => [
          t.shards === 0 ? 'standalone' : `${t.shards} shard${t.shards > 1 ? 's' : ''}`,
          t.setMedian.toFixed(0),
          times(t.setMedian, base.setMedian),
          times(t.setMedian, peer.setMedian),
          t.getMedian.toFixed(0),
          times(t.getMedian, base.getMedian),
          times(t.getMedian, peer.getMedian),
        ]),
        1,
      )}\n`,
    );
    printTargets(13, [
      {
        target: 'failover time ≤ Redis Sentinel (median)',
        measured: redis.length
          ? `${ms(segkv)} vs ${ms(redis)} ms (${ratio.toFixed(2)}×)`
          : 'no redis-server to compare',
        met: redis.length > 0 && ratio <= 1,
      },
    ]);
    const file = writeResults(
      'cluster',
      started,
      {
        ...runInfo(commandLine('bench:cluster'), started),
        leaseMs,
        rounds,
        segkvMs: segkv,
        sentinelMs: redis,
        throughput: { ...throughputOptions, rows: throughput },
      },
      args.string('out'),
    );
    process.stdout.write(`results: ${file}\n`);
  } finally {
    root.cleanup();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:cluster: ${(err as Error).message}\n`);
  process.exit(1);
});
