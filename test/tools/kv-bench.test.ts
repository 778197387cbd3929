/**
 * kv-bench as a process against a spawned kv-server: the --json report has
 * the documented shape and every test made progress. No timing assertions.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KvClient } from '../../src/index.js';
import { type ServerProcess, spawnServer } from '../server/spawn.js';
import { REPO } from './helpers.js';

/** kv-bench compiled privately (as test/tools/helpers.ts does for kv-check): dist/ may be rebuilt by others meanwhile. */
const OUT = join(REPO, 'node_modules', '.cache', 'segkv-kv-bench-tests', String(process.pid));
const KV_BENCH = join(OUT, 'tools', 'kv-bench.js');

function buildKvBench(): void {
  rmSync(OUT, { recursive: true, force: true });
  const args = [
    'tsc',
    join(REPO, 'tools', 'kv-bench.ts'),
    '--ignoreConfig',
    '--outDir',
    OUT,
    '--rootDir',
    REPO,
  ];
  args.push('--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--target', 'ES2022');
  args.push('--skipLibCheck', '--types', 'node', '--strict');
  spawnSync('npx', args, { cwd: REPO, stdio: 'ignore' });
  if (!existsSync(KV_BENCH)) throw new Error(`compiling kv-bench into ${OUT} produced no ${KV_BENCH}`);
}

function bench(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [KV_BENCH, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

let server: ServerProcess;

beforeAll(async () => {
  buildKvBench();
  server = await spawnServer({ args: ['--fsync', 'never'] });
});

afterAll(async () => {
  await server?.stop();
  rmSync(OUT, { recursive: true, force: true });
});

describe('kv-bench', () => {
  it('--json reports every test with ops/s and latency percentiles', () => {
    const r = bench([
      '-p',
      String(server.port),
      '-c',
      '4',
      '-P',
      '4',
      '-n',
      '300',
      '-r',
      '50',
      '-d',
      '20',
      '-t',
      'ping,set,get,mset,mget,del,mixed',
      '--prefill',
      '--json',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({
      tool: 'kv-bench',
      target: 'segkv',
      port: server.port,
      clients: 4,
      pipeline: 4,
      requests: 300,
      durationSeconds: null,
      valueBytes: 20,
      keyspace: 50,
    });
    expect(report.prefill).toMatchObject({ test: 'mset', errors: 0 });
    expect(report.results.map((t: { test: string }) => t.test)).toEqual([
      'ping',
      'set',
      'get',
      'mset',
      'mget',
      'del',
      'mixed',
    ]);
    for (const t of report.results) {
      expect(t.requests).toBe(300);
      expect(t.errors).toBe(0);
      expect(t.opsPerSec).toBeGreaterThan(0);
      for (const k of ['p50', 'p90', 'p99', 'p999', 'max', 'mean']) {
        expect(typeof t.latencyMs[k]).toBe('number');
      }
      expect(t.latencyMs.p50).toBeLessThanOrEqual(t.latencyMs.max);
    }
    // Every key was written by the prefill: GETs hit.
    expect(report.results[2].nils).toBe(0);
  });

  it('prints a table without --json', () => {
    const r = bench(['-p', String(server.port), '-c', '2', '-n', '200', '-t', 'set', '-q']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/ops\/s\s+p50 ms\s+p90 ms\s+p99 ms\s+p99\.9 ms\s+max ms/);
    expect(r.stdout).toMatch(/^set\s+200\s/m);
  });

  it('exits 1 with a clear message when nothing listens', () => {
    const r = bench(['-p', '1', '-n', '10', '-t', 'ping']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot connect to the segkv server at 127\.0\.0\.1:1/);
  });

  it('--wait N ends every batch with WAIT N 0: not counted as a request, the replica has every write when it ends', async () => {
    const replica = await spawnServer({
      args: ['--fsync', 'never', '--replica-of', `127.0.0.1:${server.port}`],
    });
    const pc = new KvClient({ port: server.port, reconnect: false });
    const rc = new KvClient({ port: replica.port, reconnect: false });
    try {
      const deadline = Date.now() + 15_000;
      while ((await rc.role()).link !== 'up') {
        if (Date.now() > deadline) throw new Error('the replica did not link within 15 s');
        await new Promise((res) => setTimeout(res, 50));
      }
      const r = bench([
        '-p',
        String(server.port),
        '-c',
        '3',
        '-P',
        '7',
        '-n',
        '400',
        '-t',
        'set',
        '--wait',
        '1',
        '--json',
      ]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const report = JSON.parse(r.stdout);
      expect(report.waitReplicas).toBe(1);
      expect(report.results[0]).toMatchObject({ test: 'set', requests: 400, errors: 0 });
      // Every batch waited for the replica: it holds the primary's whole log already.
      expect((await rc.role()).end).toBe((await pc.role()).end);
      // An error reply to the WAIT counts as an error, still not as a request.
      const bad = bench([
        '-p',
        String(server.port),
        '-c',
        '2',
        '-P',
        '5',
        '-n',
        '50',
        '-t',
        'set',
        '--wait',
        '99999',
        '--json',
      ]);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(/error replies in set; first: WRONG_ARGS: WAIT/);
      expect(JSON.parse(bad.stdout).results[0]).toMatchObject({ requests: 50, errors: 10 });
    } finally {
      await pc.close();
      await rc.close();
      await replica.stop();
    }
  }, 60_000);

  it('--warmup runs the load first unrecorded; --timeline writes every measured request', () => {
    const file = join(OUT, 'timeline.csv');
    const args = ['-p', String(server.port), '-c', '3', '-t', 'set,get', '--duration', '0.4', '--json'];
    const r = bench([...args, '--warmup', '0.6', '--timeline', file]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ durationSeconds: 0.4, warmupSeconds: 0.6 });
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    for (const [i, t] of report.results.entries()) {
      expect(t.timeline).toBeUndefined(); // not in the JSON report
      expect(t.seconds).toBeGreaterThanOrEqual(0.4);
      expect(t.seconds).toBeLessThan(0.95); // the measured part only, not the warm-up (0.6 s more)
      const head = lines.findIndex((l) => l.startsWith(`# test=${t.test} `));
      expect(lines[head]).toMatch(new RegExp(`start_epoch_ms=\\d+\\.\\d+ requests=${t.requests}$`));
      expect(lines[head + 1]).toBe('sent_ms,latency_us,connection');
      const rows = lines.slice(head + 2, head + 2 + t.requests).map((l) => l.split(',').map(Number));
      expect(rows).toHaveLength(t.requests);
      if (i === 0) expect(lines[head + 2 + t.requests]).toMatch(/^# test=get /);
      // Only batches written in the measured part: none from the warm-up (sent before 0).
      for (const [sent, latency, conn] of rows) {
        expect(sent).toBeGreaterThanOrEqual(0);
        // Before the deadline; written to the µs, a batch sent in its last µs reads 400.000.
        expect(sent).toBeLessThanOrEqual(400);
        expect(latency).toBeGreaterThan(0);
        expect([0, 1, 2]).toContain(conn);
      }
    }
    expect(bench([...args.slice(0, -3), '-n', '10', '--warmup', '1']).code).toBe(2); // --warmup needs --duration
  });

  it('exits 2 on an unknown test', () => {
    const r = bench(['-t', 'nope']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown test "nope"/);
  });
});
