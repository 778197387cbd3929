/**
 * kv-bench's load generator: one code path for both stores, with the protocol
 * behind a WireAdapter (tools/lib/wire.ts). It owns the connections, the
 * pipelining, the key choice and the timing, so segkv and Redis see exactly
 * the same load from exactly the same client code.
 *
 * Model (as redis-benchmark): `clients` connections each send `pipeline`
 * requests in one socket write, wait for all their replies, then send the
 * next batch, until `requests` have been sent in total (or `durationMs` has
 * passed). A request's latency is from the write of its batch to the arrival
 * of its reply, recorded in µs in an HDR histogram (hdr-histogram-js, 3
 * significant digits). An MSET/MGET of several keys counts as one request.
 *
 * With `waitReplicas` set, every batch ends with `WAIT n 0` (Redis semantics,
 * both stores: block until n replicas hold this connection's writes), so a
 * batch's latency includes its replication; the WAIT is not counted as a
 * request, an error reply to it is.
 *
 * Everything runs on one event loop; `performance.now()` is read once per
 * received chunk, not per reply.
 */
import { type Socket, connect as tcpConnect } from 'node:net';
import * as hdr from 'hdr-histogram-js';
import {
  KEY,
  MAX_KEYSPACE,
  type ReplySink,
  type Template,
  type WireAdapter,
  writeKeyDigits,
} from './wire.js';

export const TEST_NAMES = ['ping', 'set', 'get', 'mset', 'mget', 'del', 'mixed'] as const;
export type TestName = (typeof TEST_NAMES)[number];

export interface LoadOptions {
  host: string;
  port: number;
  password: string | undefined;
  /** Connections. */
  clients: number;
  /** Requests per batch per connection. */
  pipeline: number;
  /** Requests to send in all (ignored when durationMs > 0). */
  requests: number;
  /** Run for this long instead of a request count; 0 = use `requests`. */
  durationMs: number;
  /**
   * With durationMs: run the same load this long first, unrecorded (a
   * request whose batch was written before the measured part is not counted,
   * nor is its latency), so the measured part starts with both ends warm.
   */
  warmupMs?: number | undefined;
  /** Bytes of each value. */
  valueBytes: number;
  /** Keys are chosen uniformly from key:000000000000 .. keyspace-1. */
  keyspace: number;
  /** mixed: the share of GETs (the rest are SETs), 0..1. */
  readRatio: number;
  /** Keys per MSET/MGET request. */
  keysPerOp: number;
  /** PRNG seed (xorshift32), so a run can be repeated key for key. */
  seed: number;
  /** End every batch with `WAIT waitReplicas 0` (not counted as a request); undefined: no WAIT. */
  waitReplicas?: number | undefined;
  /** Keep every request's send time and latency (TestResult.timeline). */
  timeline?: boolean | undefined;
}

export interface LatencyMs {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

export interface TestResult {
  test: string;
  /** Requests answered (error replies included). */
  requests: number;
  errors: number;
  /** Nil replies (GET of a missing key). */
  nils: number;
  seconds: number;
  opsPerSec: number;
  latencyMs: LatencyMs;
  firstError?: string;
  /** With LoadOptions.timeline: every request, in reply order. */
  timeline?: Timeline;
}

/**
 * Every request of a run (LoadOptions.timeline): when its batch was written,
 * ms after the run's start, and its latency, µs, as the histogram has it;
 * `startEpochMs` is the run's start on the wall clock (performance.timeOrigin
 * + the start), to line requests up with another process's events.
 */
export interface Timeline {
  startEpochMs: number;
  count: number;
  /** sentMs[i], latencyUs[i], connection[i]: request i. */
  sentMs: Float64Array;
  latencyUs: Float64Array;
  connection: Uint16Array;
}

/** Live figures for a progress line. */
export interface Progress {
  test: string;
  done: number;
  elapsedMs: number;
  p50Ms: number;
}

/** Which request a test sends next. */
interface Workload {
  templates: Template[];
  /** Sent after every batch (WAIT), its reply not counted as a request. */
  trailer: Template | undefined;
  /** Index into templates for the next request. */
  pick(): number;
  /** The next key number. */
  key(): number;
}

class Xorshift32 {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  /** Uniform in [0, 1). */
  next(): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s / 4294967296;
  }
}

function workload(adapter: WireAdapter, test: TestName, o: LoadOptions, rng: Xorshift32): Workload {
  const value = Buffer.alloc(o.valueBytes, 'x');
  const random = () => Math.floor(rng.next() * o.keyspace);
  const keys = (withValues: boolean) => {
    const args: (typeof KEY | Buffer)[] = [];
    for (let i = 0; i < o.keysPerOp; i++) {
      args.push(KEY);
      if (withValues) args.push(value);
    }
    return args;
  };
  const trailer = o.waitReplicas === undefined ? undefined : adapter.template('WAIT', [o.waitReplicas, 0]);
  const one = (t: Template): Workload => ({ templates: [t], trailer, pick: () => 0, key: random });
  switch (test) {
    case 'ping':
      return one(adapter.template('PING', []));
    case 'set':
      return one(adapter.template('SET', [KEY, value]));
    case 'get':
      return one(adapter.template('GET', [KEY]));
    case 'del':
      return one(adapter.template('DEL', [KEY]));
    case 'mset':
      return one(adapter.template('MSET', keys(true)));
    case 'mget':
      return one(adapter.template('MGET', keys(false)));
    case 'mixed': {
      const r = o.readRatio;
      return {
        templates: [adapter.template('GET', [KEY]), adapter.template('SET', [KEY, value])],
        trailer,
        pick: () => (rng.next() < r ? 0 : 1),
        key: random,
      };
    }
  }
}

/** Shared state of one running test. */
class Run implements ReplySink {
  readonly histogram = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 3_600_000_000,
    numberOfSignificantValueDigits: 3,
    useWebAssembly: false,
  });
  sent = 0;
  done = 0;
  errors = 0;
  nils = 0;
  firstError: string | undefined;
  /** µs latency of the replies being parsed (set per chunk). */
  latencyUs = 0;
  started = 0;
  deadline = Number.POSITIVE_INFINITY;
  /** The replies being parsed: their batch's write time and connection (set per chunk, for the timeline). */
  sentAt = 0;
  connection = 0;
  timeline: Timeline | undefined;

  constructor(
    readonly options: LoadOptions,
    readonly work: Workload,
  ) {
    if (options.timeline) {
      const n = 1 << 16;
      this.timeline = {
        startEpochMs: 0,
        count: 0,
        sentMs: new Float64Array(n),
        latencyUs: new Float64Array(n),
        connection: new Uint16Array(n),
      };
    }
  }

  reply(error: string | undefined, nil: boolean): void {
    if (this.sentAt < this.started) {
      // Sent during the warm-up: not a measured request (an error still fails the run).
      this.count(error, false);
      return;
    }
    this.done++;
    this.histogram.recordValue(this.latencyUs);
    if (this.timeline) this.mark(this.timeline);
    this.count(error, nil);
  }

  private mark(t: Timeline): void {
    if (t.count === t.sentMs.length) {
      const grow = <A extends Float64Array | Uint16Array>(a: A, make: (n: number) => A): A => {
        const b = make(a.length * 2);
        b.set(a);
        return b;
      };
      t.sentMs = grow(t.sentMs, (n) => new Float64Array(n));
      t.latencyUs = grow(t.latencyUs, (n) => new Float64Array(n));
      t.connection = grow(t.connection, (n) => new Uint16Array(n));
    }
    t.sentMs[t.count] = this.sentAt - this.started;
    t.latencyUs[t.count] = this.latencyUs;
    t.connection[t.count] = this.connection;
    t.count++;
  }

  /** A reply's error or nil, without counting it as a request (the trailer's). */
  count(error: string | undefined, nil: boolean): void {
    if (error !== undefined) {
      this.errors++;
      this.firstError ??= error;
    } else if (nil) this.nils++;
  }

  /** How many requests the next batch may send (0: stop). */
  claim(now: number): number {
    const o = this.options;
    if (o.durationMs > 0) return now < this.deadline ? o.pipeline : 0;
    const n = Math.min(o.pipeline, o.requests - this.sent);
    if (n <= 0) return 0;
    this.sent += n;
    return n;
  }
}

/** One connection: sends a batch, counts its replies, sends the next. */
class BenchConnection implements ReplySink {
  private readonly out: Buffer;
  private pending: Buffer | undefined;
  /** Replies still expected for this batch: its requests', then the trailer's. */
  private awaiting = 0;
  /** Of those, the requests' (the rest is the trailer). */
  private awaitingRequests = 0;
  private received = 0;
  private sentAt = 0;
  private nextId = 1;
  private finished!: () => void;
  private failed!: (err: Error) => void;
  readonly done: Promise<void>;

  constructor(
    private readonly socket: Socket,
    private readonly adapter: WireAdapter,
    private readonly run: Run,
    private readonly index = 0,
  ) {
    const largest = Math.max(...run.work.templates.map((t) => t.bytes.length));
    this.out = Buffer.allocUnsafe(largest * run.options.pipeline + (run.work.trailer?.bytes.length ?? 0));
    this.done = new Promise<void>((resolve, reject) => {
      this.finished = resolve;
      this.failed = reject;
    });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.failed(err));
    socket.on('close', () => {
      if (this.awaiting > 0) this.failed(new Error(`the ${adapter.target} server closed the connection`));
    });
  }

  /** Sends the next batch, or resolves `done` when the run says stop. */
  sendBatch(): void {
    const now = performance.now();
    const n = this.run.claim(now);
    if (n === 0) {
      this.finished();
      return;
    }
    const work = this.run.work;
    const out = this.out;
    let at = 0;
    for (let i = 0; i < n; i++) {
      const t = work.templates[work.pick()]!;
      t.bytes.copy(out, at);
      for (const k of t.keyAt) writeKeyDigits(out, at + k, work.key());
      if (t.idAt >= 0) {
        out.writeUInt32BE(this.nextId, at + t.idAt);
        this.nextId = this.nextId >= 0xfffffffe ? 1 : this.nextId + 1;
      }
      at += t.bytes.length;
    }
    const trailer = work.trailer;
    if (trailer) {
      trailer.bytes.copy(out, at);
      if (trailer.idAt >= 0) {
        out.writeUInt32BE(this.nextId, at + trailer.idAt);
        this.nextId = this.nextId >= 0xfffffffe ? 1 : this.nextId + 1;
      }
      at += trailer.bytes.length;
    }
    this.awaitingRequests = n;
    this.awaiting = n + (trailer ? 1 : 0);
    this.sentAt = now;
    // Safe to reuse `out` for the next batch: it is only refilled after every reply to this one arrived.
    this.socket.write(out.subarray(0, at));
  }

  private onData(chunk: Buffer): void {
    const run = this.run;
    run.latencyUs = Math.max(1, Math.round((performance.now() - this.sentAt) * 1000));
    run.sentAt = this.sentAt;
    run.connection = this.index;
    let buf = chunk;
    if (this.pending !== undefined) {
      buf = Buffer.concat([this.pending, chunk]);
      this.pending = undefined;
    }
    this.received = 0;
    let consumed: number;
    try {
      consumed = this.adapter.parse(buf, 0, buf.length, this);
    } catch (err) {
      this.failed(err as Error);
      this.socket.destroy();
      return;
    }
    if (consumed < buf.length) this.pending = buf.subarray(consumed);
    this.awaiting -= this.received;
    if (this.awaiting < 0) {
      this.failed(new Error(`the ${this.adapter.target} server sent more replies than requests`));
    } else if (this.awaiting === 0) this.sendBatch();
  }

  /** A reply of this batch: a request's, or (after them) the trailer's. */
  reply(error: string | undefined, nil: boolean): void {
    this.received++;
    if (this.awaitingRequests > 0) {
      this.awaitingRequests--;
      this.run.reply(error, nil);
    } else this.run.count(error, false);
  }

  /** Sends raw bytes and waits for `count` replies (AUTH before the run). */
  static async handshake(socket: Socket, adapter: WireAdapter, bytes: Buffer, count: number): Promise<void> {
    let got = 0;
    let error: string | undefined;
    let pending = Buffer.alloc(0);
    await new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        const buf = Buffer.concat([pending, chunk]);
        const used = adapter.parse(buf, 0, buf.length, {
          reply: (e) => {
            got++;
            error ??= e;
          },
        });
        pending = buf.subarray(used);
        if (got >= count) {
          socket.off('data', onData);
          socket.off('error', reject);
          if (error !== undefined) reject(new Error(`${adapter.target}: ${error}`));
          else resolve();
        }
      };
      socket.on('data', onData);
      socket.once('error', reject);
      socket.write(bytes);
    });
  }
}

/**
 * Connects, sends one request (`command` with `args`, no key slots), waits for
 * its reply and closes: resolves with the error text of an error reply, or
 * undefined. For readiness checks (PING) outside a run.
 */
export async function probe(
  adapter: WireAdapter,
  host: string,
  port: number,
  command: string,
  args: readonly string[] = [],
): Promise<string | undefined> {
  const socket = await open({ host, port });
  try {
    const t = adapter.template(command, args);
    const bytes = Buffer.from(t.bytes);
    if (t.idAt >= 0) bytes.writeUInt32BE(1, t.idAt);
    await BenchConnection.handshake(socket, adapter, bytes, 1);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  } finally {
    socket.destroy();
  }
}

function open(o: { host: string; port: number }): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = tcpConnect({ host: o.host, port: o.port, noDelay: true }, () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** Opens `clients` connections (authenticated if a password is set). */
async function openAll(adapter: WireAdapter, o: LoadOptions): Promise<Socket[]> {
  const sockets: Socket[] = [];
  try {
    for (let i = 0; i < o.clients; i++) {
      const s = await open(o);
      sockets.push(s);
      if (o.password !== undefined) {
        const t = adapter.template('AUTH', [o.password]);
        const bytes = Buffer.from(t.bytes);
        if (t.idAt >= 0) bytes.writeUInt32BE(1, t.idAt);
        await BenchConnection.handshake(s, adapter, bytes, 1);
      }
    }
  } catch (err) {
    for (const s of sockets) s.destroy();
    throw new Error(
      `cannot connect to the ${adapter.target} server at ${o.host}:${o.port}: ${(err as Error).message}`,
    );
  }
  return sockets;
}

export function checkOptions(o: LoadOptions): void {
  if (o.clients < 1) throw new RangeError('clients must be at least 1');
  if (o.pipeline < 1) throw new RangeError('pipeline must be at least 1');
  if (o.keyspace < 1 || o.keyspace > MAX_KEYSPACE)
    throw new RangeError(`keyspace must be 1..${MAX_KEYSPACE}`);
  if (o.keysPerOp < 1) throw new RangeError('keys per MSET/MGET must be at least 1');
  if (!(o.readRatio >= 0 && o.readRatio <= 1)) throw new RangeError('read ratio must be within 0..1');
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

/** Runs one test from connect to the last reply; connections are opened before the clock starts. */
export async function runTest(
  adapter: WireAdapter,
  options: LoadOptions,
  test: TestName,
  onProgress?: (p: Progress) => void,
  keySource?: () => number,
): Promise<TestResult> {
  checkOptions(options);
  const rng = new Xorshift32(options.seed);
  const work = workload(adapter, test, options, rng);
  if (keySource) work.key = keySource;
  const run = new Run(options, work);
  const sockets = await openAll(adapter, options);
  const conns = sockets.map((s, i) => new BenchConnection(s, adapter, run, i));
  let timer: NodeJS.Timeout | undefined;
  if (onProgress) {
    timer = setInterval(() => {
      onProgress({
        test,
        done: run.done,
        elapsedMs: performance.now() - run.started,
        p50Ms: run.histogram.getValueAtPercentile(50) / 1000,
      });
    }, 250);
  }
  const warmupMs = options.durationMs > 0 ? (options.warmupMs ?? 0) : 0;
  // The measured part starts after the warm-up; replies to batches written before it are not recorded.
  run.started = performance.now() + warmupMs;
  if (run.timeline) run.timeline.startEpochMs = performance.timeOrigin + run.started;
  if (options.durationMs > 0) run.deadline = run.started + options.durationMs;
  try {
    for (const c of conns) c.sendBatch();
    await Promise.all(conns.map((c) => c.done));
  } finally {
    if (timer) clearInterval(timer);
    for (const s of sockets) s.destroy();
  }
  const seconds = (performance.now() - run.started) / 1000;
  const h = run.histogram;
  const result: TestResult = {
    test,
    requests: run.done,
    errors: run.errors,
    nils: run.nils,
    seconds: round3(seconds),
    opsPerSec: Math.round(run.done / seconds),
    latencyMs: {
      p50: h.getValueAtPercentile(50) / 1000,
      p90: h.getValueAtPercentile(90) / 1000,
      p99: h.getValueAtPercentile(99) / 1000,
      p999: h.getValueAtPercentile(99.9) / 1000,
      max: h.maxValue / 1000,
      mean: round3(h.mean / 1000),
    },
  };
  if (run.firstError !== undefined) result.firstError = run.firstError;
  if (run.timeline) result.timeline = run.timeline;
  h.destroy();
  return result;
}

/**
 * Writes keys start .. end-1 once each (MSET of `keysPerOp` keys, pipelined)
 * so that GETs hit; not timed as a test, but returned like one.
 */
export function prefill(
  adapter: WireAdapter,
  options: LoadOptions,
  start: number,
  end: number,
): Promise<TestResult> {
  let next = start;
  const requests = Math.ceil((end - start) / options.keysPerOp);
  // A last, partial MSET repeats key end-1 in its spare slots: harmless for both stores.
  const key = () => (next < end ? next++ : end - 1);
  return runTest(
    adapter,
    { ...options, requests, durationMs: 0, keyspace: Math.max(options.keyspace, end), timeline: false },
    'mset',
    undefined,
    key,
  );
}
