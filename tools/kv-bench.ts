#!/usr/bin/env node
import { appendFileSync, writeFileSync } from 'node:fs';
import { fmt, formatTable } from './bench/lib.js';
import { EXIT_OK, EXIT_PROBLEMS, integerOption, parseCommandLine, runTool, UsageError } from './lib/cli.js';
/**
 * kv-bench: a redis-benchmark for segkv, and for Redis with the very same
 * load generator (`--target redis`), so the two can be compared fairly.
 * The generator is tools/lib/load.ts; the protocols are tools/lib/wire.ts.
 */
import {
  type LoadOptions,
  type Progress,
  prefill,
  runTest,
  TEST_NAMES,
  type TestName,
  type TestResult,
  type Timeline,
} from './lib/load.js';
import { MAX_KEYSPACE, respWire, segkvWire } from './lib/wire.js';

const HELP = `Usage: kv-bench [options]

Drives a kv-server (or, with --target redis, a redis-server) with pipelined
requests from many connections and reports throughput and latency, like
redis-benchmark. Both targets are driven by the same load generator over raw
sockets; only the encoding differs (segkv frames or RESP).

Options:
  -h HOST            Server host (default 127.0.0.1).
  -p PORT            Server port (default 7379 for segkv, 6379 for redis).
  -a PASSWORD        Send AUTH PASSWORD on every connection first.
  -c CLIENTS         Parallel connections (default 50).
  -P PIPELINE        Requests per batch per connection (default 1: no pipelining).
  -n REQUESTS        Requests per test (default 100000).
  --duration SECONDS Run each test this long instead of -n requests.
  --warmup SECONDS   With --duration: run each test's load this long first,
                     unrecorded (requests written in it are not counted, nor
                     their latency), so that the measured part starts with the
                     server and this client warm (default 0).
  -d VALUE_BYTES     Value size in bytes for set, mset and mixed (default 100).
  -r KEYSPACE        Keys are key:000000000000 .. KEYSPACE-1, picked at random
                     (default 100000).
  -t TESTS           Comma-separated: ${TEST_NAMES.join(',')} (default set,get).
                     mset/mget send --keys-per-op keys per request; mixed sends
                     GET with probability --read-ratio, else SET.
  --read-ratio R     Share of GETs in mixed, 0..1 (default 0.8).
  --keys-per-op K    Keys per MSET/MGET request (default 10).
  --prefill          Before the tests, write every key of the keyspace once
                     (MSET, not timed) so that reads hit.
  --prefill-start N  With --prefill, start at key N instead of 0.
  --seed N           Seed of the key sequence (default 1).
  --wait N           End every batch with WAIT N 0 (block until N replicas hold
                     the connection's writes; not counted as a request), so
                     latency and ops/s include replication.
  --target T         segkv (default) or redis.
  --timeline FILE    Write every request of each test to FILE as CSV: when its
                     batch was written (ms after the test's start), its latency
                     (µs) and its connection; a '#' line before each test gives
                     the test's start on the wall clock (epoch ms), to line the
                     requests up with another process's events.
  --json             Print one JSON object instead of the table.
  --quiet, -q        No progress line.
  --help             Show this help.

Latency is from the write of a request's batch to the arrival of its reply,
recorded in an HDR histogram (3 significant digits); figures are in ms.
A live progress line is shown on stderr when it is a terminal.

Exit status: 0 done, 1 a test failed or got error replies, 2 usage error.
`;

const OPTIONS = {
  host: { type: 'string', short: 'h' },
  port: { type: 'string', short: 'p' },
  password: { type: 'string', short: 'a' },
  clients: { type: 'string', short: 'c' },
  pipeline: { type: 'string', short: 'P' },
  requests: { type: 'string', short: 'n' },
  'data-size': { type: 'string', short: 'd' },
  keyspace: { type: 'string', short: 'r' },
  tests: { type: 'string', short: 't' },
  duration: { type: 'string' },
  warmup: { type: 'string' },
  'read-ratio': { type: 'string' },
  'keys-per-op': { type: 'string' },
  prefill: { type: 'boolean' },
  'prefill-start': { type: 'string' },
  seed: { type: 'string' },
  wait: { type: 'string' },
  target: { type: 'string' },
  timeline: { type: 'string' },
  json: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean' },
} as const;

/** The whole report (also the --json object). */
export interface BenchReport {
  tool: 'kv-bench';
  target: 'segkv' | 'redis';
  host: string;
  port: number;
  clients: number;
  pipeline: number;
  requests: number | null;
  durationSeconds: number | null;
  /** --warmup: unrecorded seconds of the same load before each test's measured part. */
  warmupSeconds: number;
  valueBytes: number;
  keyspace: number;
  readRatio: number;
  keysPerOp: number;
  /** --wait: replicas every batch WAITs for; null without. */
  waitReplicas: number | null;
  prefill: TestResult | null;
  results: TestResult[];
}

function positive(name: string, text: string | undefined, fallback: number): number {
  const n = integerOption(name, text, fallback);
  if (n < 1) throw new UsageError(`--${name} must be at least 1`);
  return n;
}

function progressLine(p: Progress): void {
  const rate = p.elapsedMs > 0 ? (p.done * 1000) / p.elapsedMs : 0;
  process.stderr.write(
    `\r\x1b[K${p.test}: ${p.done.toLocaleString('en-US')} requests, ${fmt(rate)} ops/s, p50 ${p.p50Ms.toFixed(3)} ms`,
  );
}

export function reportTable(r: BenchReport): string {
  const head = ['test', 'requests', 'ops/s', 'p50 ms', 'p90 ms', 'p99 ms', 'p99.9 ms', 'max ms', 'errors'];
  const ms = (x: number) => x.toFixed(3);
  const rows = r.results.map((t) => [
    t.test,
    String(t.requests),
    fmt(t.opsPerSec),
    ms(t.latencyMs.p50),
    ms(t.latencyMs.p90),
    ms(t.latencyMs.p99),
    ms(t.latencyMs.p999),
    ms(t.latencyMs.max),
    String(t.errors),
  ]);
  const title =
    `kv-bench → ${r.target} ${r.host}:${r.port}: ${r.clients} clients, pipeline ${r.pipeline}, ` +
    `${r.valueBytes}-byte values, ${r.keyspace.toLocaleString('en-US')} keys, ` +
    (r.durationSeconds !== null ? `${r.durationSeconds} s per test` : `${r.requests} requests per test`) +
    (r.warmupSeconds > 0 ? ` after ${r.warmupSeconds} s of warm-up` : '');
  return `${title}\n${formatTable(head, rows, 1)}\n`;
}

/** Appends one test's requests to `file` (--timeline): a '#' line, a CSV header, a row per request. */
function writeTimeline(file: string, test: string, t: Timeline): void {
  const lines = [
    `# test=${test} start_epoch_ms=${t.startEpochMs.toFixed(3)} requests=${t.count}`,
    'sent_ms,latency_us,connection',
  ];
  for (let i = 0; i < t.count; i++) {
    lines.push(`${t.sentMs[i]!.toFixed(3)},${t.latencyUs[i]},${t.connection[i]}`);
  }
  appendFileSync(file, `${lines.join('\n')}\n`);
}

async function main(argv: string[]): Promise<number> {
  const { values: v } = parseCommandLine(argv, OPTIONS);
  if (v.help) {
    process.stdout.write(HELP);
    return EXIT_OK;
  }
  const target = (v.target as string | undefined) ?? 'segkv';
  if (target !== 'segkv' && target !== 'redis')
    throw new UsageError(`--target takes segkv or redis, got ${target}`);
  const adapter = target === 'redis' ? respWire : segkvWire;
  const tests = ((v.tests as string | undefined) ?? 'set,get').split(',').filter((t) => t !== '');
  for (const t of tests) {
    if (!(TEST_NAMES as readonly string[]).includes(t)) {
      throw new UsageError(`unknown test ${JSON.stringify(t)}; tests: ${TEST_NAMES.join(', ')}`);
    }
  }
  const durationText = v.duration as string | undefined;
  const duration = durationText === undefined ? 0 : Number(durationText);
  if (!(duration >= 0) || !Number.isFinite(duration))
    throw new UsageError('--duration takes a number of seconds');
  const warmupText = v.warmup as string | undefined;
  const warmup = warmupText === undefined ? 0 : Number(warmupText);
  if (!(warmup >= 0) || !Number.isFinite(warmup)) throw new UsageError('--warmup takes a number of seconds');
  if (warmup > 0 && duration === 0) throw new UsageError('--warmup needs --duration');
  const ratioText = v['read-ratio'] as string | undefined;
  const readRatio = ratioText === undefined ? 0.8 : Number(ratioText);
  if (!(readRatio >= 0 && readRatio <= 1)) throw new UsageError('--read-ratio takes a number from 0 to 1');
  const keyspace = positive('keyspace', v.keyspace as string | undefined, 100_000);
  if (keyspace > MAX_KEYSPACE) throw new UsageError(`-r is at most ${MAX_KEYSPACE}`);
  const port = integerOption('port', v.port as string | undefined, target === 'redis' ? 6379 : 7379);
  if (port < 1 || port > 65535) throw new UsageError('-p takes a port from 1 to 65535');
  const options: LoadOptions = {
    host: (v.host as string | undefined) ?? '127.0.0.1',
    port,
    password: v.password as string | undefined,
    clients: positive('clients', v.clients as string | undefined, 50),
    pipeline: positive('pipeline', v.pipeline as string | undefined, 1),
    requests: positive('requests', v.requests as string | undefined, 100_000),
    durationMs: Math.round(duration * 1000),
    warmupMs: Math.round(warmup * 1000),
    valueBytes: integerOption('data-size', v['data-size'] as string | undefined, 100),
    keyspace,
    readRatio,
    keysPerOp: positive('keys-per-op', v['keys-per-op'] as string | undefined, 10),
    seed: integerOption('seed', v.seed as string | undefined, 1),
    waitReplicas: v.wait === undefined ? undefined : integerOption('wait', v.wait as string | undefined, 0),
    timeline: v.timeline !== undefined,
  };
  const timelineFile = v.timeline as string | undefined;
  if (timelineFile !== undefined) writeFileSync(timelineFile, '');
  const json = v.json === true;
  const progress = !json && v.quiet !== true && process.stderr.isTTY ? progressLine : undefined;
  const report: BenchReport = {
    tool: 'kv-bench',
    target,
    host: options.host,
    port: options.port,
    clients: options.clients,
    pipeline: options.pipeline,
    requests: duration > 0 ? null : options.requests,
    durationSeconds: duration > 0 ? duration : null,
    warmupSeconds: warmup,
    valueBytes: options.valueBytes,
    keyspace,
    readRatio,
    keysPerOp: options.keysPerOp,
    waitReplicas: options.waitReplicas ?? null,
    prefill: null,
    results: [],
  };
  if (v.prefill === true) {
    const start = integerOption('prefill-start', v['prefill-start'] as string | undefined, 0);
    if (start < keyspace) {
      report.prefill = await prefill(
        adapter,
        { ...options, waitReplicas: undefined, keysPerOp: Math.max(options.keysPerOp, 100) },
        start,
        keyspace,
      );
      if (report.prefill.errors > 0) throw new Error(`prefill failed: ${report.prefill.firstError}`);
    }
  }
  for (const t of tests) {
    const result = await runTest(adapter, options, t as TestName, progress);
    if (progress) process.stderr.write('\r\x1b[K');
    if (timelineFile !== undefined && result.timeline) {
      writeTimeline(timelineFile, result.test, result.timeline);
      delete result.timeline;
    }
    report.results.push(result);
  }
  process.stdout.write(json ? `${JSON.stringify(report)}\n` : reportTable(report));
  const failed = report.results.find((r) => r.errors > 0);
  if (failed) {
    process.stderr.write(
      `kv-bench: ${failed.errors} error replies in ${failed.test}; first: ${failed.firstError}\n`,
    );
    return EXIT_PROBLEMS;
  }
  return EXIT_OK;
}

runTool('kv-bench', main);
