#!/usr/bin/env node
import { type ChildProcess, spawn } from 'node:child_process';
/**
 * hostile: attacks a running kv-server with hostile clients while one
 * well-behaved client keeps writing and reading, and reports per attack the
 * inputs tried, crashes, violations, the server's peak RSS (/proc) and the
 * well-behaved client's p50/p99 latency (DESIGN.md §1.6, §5).
 *
 * Attacks, run one after another (each bounded in count and time):
 * - fuzz frames: fast-check-generated well-framed requests (known and unknown
 *   commands, random MessagePack arguments, bad envelopes) after AUTH; every
 *   reply must be a well-formed frame, a fatal frame ends the connection;
 * - random bytes: a plain random byte stream on several connections;
 * - connection churn: thousands of connections opened and dropped, some after
 *   half a frame;
 * - slowloris: connections sending one byte a second of a frame, plus silent
 *   ones (the server's idle timeout must close the silent ones; the
 *   trickling ones are bounded by max-clients × the pre-AUTH frame limit);
 * - pipeline without reading: GETs of a 60 KiB value sent and never read
 *   (each copied into its reply: the case that found the chunk backpressure bug);
 * - oversized frames: length prefixes over the pre-AUTH and the
 *   authenticated limits, refused before any body byte is buffered;
 * - before AUTH: every command sent without AUTH gets NOAUTH, nothing written.
 * Violations: a reply that is not a frame or has an undocumented code, a
 * command run without AUTH, an oversized frame accepted, an acknowledged
 * write of the well-behaved client not read back, RSS over the bound, the
 * server exiting. Exit 1 on any.
 *
 * Usage: node dist/tools/hostile.js [--quick] [--seed S]
 * (spawns kv-server from this build on a temporary directory, port 0)
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { KvClient } from '../src/index.js';
import { COMMAND_NAMES } from '../src/protocol/messages.js';
import { integerAtLeast, ownChild, parseOptionsStrictly, runHarness } from './lib/cli.js';
import { RawConnection, rawFrame } from './lib/raw-connection.js';

const packr = new Packr({ useRecords: false, variableMapSize: true });

export const PASSWORD = 'hostile-test-password';
/** Authenticated frame limit the server runs with (--max-frame-bytes). */
export const MAX_FRAME = 1024 * 1024;
/** Idle timeout the server runs with (--idle-timeout-ms). */
export const IDLE_MS = 1500;
/** A server's RSS above this during an attack is a violation. */
const RSS_BOUND_BYTES = 512 * 1024 * 1024;

/** Every error code PROTOCOL.md §8 documents (its table's first column): any other code in a reply is a violation. */
const DOCUMENTED: ReadonlySet<string> = (() => {
  // tools/hostile.ts (run by the tests) or dist/tools/hostile.js (npm run hostile).
  const paths = ['../protocol/PROTOCOL.md', '../../protocol/PROTOCOL.md'].map((p) =>
    fileURLToPath(new URL(p, import.meta.url)),
  );
  const doc = readFileSync(paths.find((p) => existsSync(p)) ?? paths[0]!, 'utf8');
  const section = doc.slice(doc.indexOf('## 8. Error codes'), doc.indexOf('\n## 9.'));
  const codes = new Set([...section.matchAll(/^\| `([A-Z_]+)` +\|/gm)].map((m) => m[1]!));
  if (codes.size < 15) throw new Error('hostile: cannot read the error codes of PROTOCOL.md §8');
  return codes;
})();

export interface AttackResult {
  name: string;
  inputs: number;
  unit: string;
  crashes: number;
  violations: string[];
  peakRssMiB: number;
  p50Ms: number;
  p99Ms: number;
  wellBehavedOps: number;
  durationS: number;
  note: string;
}

export interface HostileOptions {
  port: number;
  pid: number;
  quick: boolean;
  seed: number;
  /** Called between attacks; true if the server process is still alive. */
  alive: () => boolean;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const req = (...parts: unknown[]) => rawFrame(packr.pack(parts));

/** A raw connection to the server; gives up connecting after 5 s. */
const openRaw = (port: number) => RawConnection.open(port, 5000);

function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Checks a reply frame is well formed; returns a violation or undefined. */
function checkReply(r: unknown[]): string | undefined {
  if (r.length === 3) {
    const e = r[2] as { code?: unknown; message?: unknown } | null;
    if (r[1] !== null || typeof e !== 'object' || e === null)
      return `malformed error reply ${JSON.stringify(r)}`;
    if (typeof e.code !== 'string' || !DOCUMENTED.has(e.code)) return `undocumented code ${String(e.code)}`;
    if (e.code === 'INTERNAL') return `INTERNAL error: ${String(e.message)}`;
    return undefined;
  }
  if (r.length === 2 && typeof r[0] === 'number') return undefined;
  return `malformed reply ${JSON.stringify(r).slice(0, 100)}`;
}

async function authed(port: number): Promise<RawConnection> {
  const c = await openRaw(port);
  c.write(req(1, 'AUTH', PASSWORD));
  const r = await c.next(5000);
  if (!Array.isArray(r) || r.length !== 2) throw new Error(`AUTH failed: ${JSON.stringify(r)}`);
  return c;
}

// ---- the well-behaved client ---------------------------------------------------

class WellBehaved {
  private client: KvClient;
  private latencies: number[] = [];
  private stop = false;
  private loop: Promise<void> | undefined;
  readonly acked = new Map<string, string>();
  failures: string[] = [];
  private n = 0;
  constructor(port: number) {
    this.client = new KvClient({
      host: '127.0.0.1',
      port,
      password: PASSWORD,
      reconnect: false,
      requestTimeoutMs: 10_000,
    });
  }
  ready(): Promise<void> {
    return this.client.ready();
  }
  start(tag: string): void {
    this.latencies = [];
    this.stop = false;
    this.loop = (async () => {
      while (!this.stop) {
        const i = this.n++;
        const key = `wb/${i % 2000}`;
        const v = `${tag}.${i}`;
        const t0 = performance.now();
        try {
          await this.client.set(key, v);
          this.latencies.push(performance.now() - t0);
          this.acked.set(key, v);
          const t1 = performance.now();
          const got = await this.client.get(key);
          this.latencies.push(performance.now() - t1);
          if (got !== v) this.failures.push(`read ${key}: ${got} after acked ${v}`);
        } catch (err) {
          this.failures.push(`${key}: ${(err as Error).message}`);
          await sleep(50);
        }
        if (i % 16 === 0) await sleep(1); // a steady client, not a load generator
      }
    })();
  }
  async finish(): Promise<{ p50: number; p99: number; ops: number }> {
    this.stop = true;
    await this.loop;
    const sorted = [...this.latencies].sort((a, b) => a - b);
    return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), ops: sorted.length };
  }
  /** Every acknowledged write is read back. */
  async verify(): Promise<string[]> {
    const keys = [...this.acked.keys()];
    const out: string[] = [];
    for (let i = 0; i < keys.length; i += 500) {
      const chunk = keys.slice(i, i + 500);
      const got = await this.client.mget(chunk);
      chunk.forEach((k, j) => {
        if (got[j] !== this.acked.get(k)) out.push(`acknowledged ${k}=${this.acked.get(k)} reads ${got[j]}`);
      });
    }
    return out;
  }
  close(): Promise<void> {
    return this.client.close();
  }
}

// ---- attacks ------------------------------------------------------------------

interface Tally {
  inputs: number;
  violations: string[];
  note: string;
}

const commandName = fc.oneof(
  // Every command from the protocol's own list (a command added later is fuzzed too), but
  // the session and admin ones, which the next line sends at their own rate.
  fc.constantFrom(...COMMAND_NAMES.filter((n) => !['HELLO', 'AUTH', 'QUIT', 'COMPACT'].includes(n))),
  fc.constantFrom('HELLO', 'AUTH', 'QUIT', 'COMPACT', 'get', 'FLUSHALL', ''),
  fc.string({ maxLength: 12 }),
);
const arg = fc.oneof(
  fc.string({ maxLength: 24 }),
  fc.uint8Array({ maxLength: 64 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.string({ maxLength: 8 }), { maxLength: 4 }),
  fc.dictionary(
    fc.constantFrom('ttl', 'nx', 'xx', 'count', 'match', 'cursor', 'x'),
    fc.oneof(fc.integer(), fc.boolean(), fc.string()),
  ),
);
const request = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .tuple(fc.nat(2 ** 32 - 1), commandName, fc.array(arg, { maxLength: 5 }))
      .map(([id, n, a]) => packr.pack([id, n, ...a])),
  },
  { weight: 2, arbitrary: fc.anything({ maxDepth: 2 }).map((v) => packr.pack(v)) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 64 }) },
);

/** Random well-framed requests sent by the fuzz attack, at most, drawn FUZZ_CHUNK at a time. */
const FUZZ_SAMPLES = 20_000;
const FUZZ_CHUNK = 250;

async function fuzzFrames(port: number, budgetMs: number, seed: number, t: Tally): Promise<void> {
  // Drawn in small chunks as the attack goes: drawing all 20,000 at once stalls
  // this process for 1-2 s on a loaded machine, long enough for the bystander
  // client it runs beside to sit idle past the server's idle timeout.
  let samples: Uint8Array[] = [];
  let chunk = 0;
  let next = 0;
  const draw = (): Uint8Array | undefined => {
    if (next >= samples.length) {
      if (chunk * FUZZ_CHUNK >= FUZZ_SAMPLES) return undefined;
      samples = fc.sample(request, { numRuns: FUZZ_CHUNK, seed: seed + chunk++ });
      next = 0;
    }
    return samples[next++];
  };
  const deadline = Date.now() + budgetMs;
  const lanes = 4;
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      let c = await authed(port);
      for (let body = draw(); body !== undefined && Date.now() < deadline; body = draw()) {
        c.write(rawFrame(body));
        t.inputs++;
        // QUIT and fatal errors close; any reply must be a frame.
        for (;;) {
          const r = await c.next(5000);
          if (r === 'timeout') {
            // A frame whose id is absent gets a fatal reply; a valid request a reply. Silence is a violation.
            t.violations.push(`no reply within 5 s to ${Buffer.from(body).toString('hex').slice(0, 80)}`);
            break;
          }
          if (r === 'garbage') {
            t.violations.push('a reply that is not a MessagePack array');
            break;
          }
          if (r === 'closed') break;
          const v = checkReply(r);
          if (v) t.violations.push(v);
          break;
        }
        if (c.closed || c.received.length > 0) {
          c.close();
          c = await authed(port);
        }
      }
      c.close();
    }),
  );
  t.note = 'well-framed random requests after AUTH';
}

async function randomBytes(port: number, budgetMs: number, seed: number, t: Tally): Promise<void> {
  let x = seed >>> 0 || 1;
  const rand = () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
  const deadline = Date.now() + budgetMs;
  let conns = 0;
  await Promise.all(
    Array.from({ length: 6 }, async (_, lane) => {
      while (Date.now() < deadline) {
        const c = lane % 2 === 0 ? await authed(port) : await openRaw(port);
        conns++;
        for (let i = 0; i < 50 && !c.closed && Date.now() < deadline; i++) {
          const n = 1 + (rand() % 2048);
          const b = Buffer.allocUnsafe(n);
          for (let j = 0; j < n; j++) b[j] = rand() & 0xff;
          c.write(b);
          t.inputs += n;
          await sleep(1);
        }
        // Whatever came back must be frames.
        while (c.received.length >= 4) {
          const r = await c.next(10);
          if (r === 'timeout' || r === 'closed') break;
          if (r === 'garbage') t.violations.push('random bytes: a reply that is not a MessagePack array');
          else if (checkReply(r)) t.violations.push(`random bytes: ${checkReply(r)}`);
        }
        c.close();
      }
    }),
  );
  t.note = `${conns} connections (half authenticated)`;
}

async function churn(port: number, total: number, t: Tally): Promise<void> {
  let done = 0;
  let failed = 0;
  const lane = async () => {
    while (done < total) {
      done++;
      try {
        const c = await openRaw(port);
        if (done % 3 === 0) c.write(Buffer.from([0, 0, 1])); // half a length prefix
        if (done % 3 === 1) c.write(req(done, 'PING').subarray(0, 6)); // half a frame
        c.close();
        t.inputs++;
      } catch {
        failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: 50 }, lane));
  if (failed > 0) t.violations.push(`${failed} of ${total} connections could not open`);
  t.note = 'open, maybe half a frame, drop; 50 at a time';
}

async function slowloris(port: number, count: number, seconds: number, t: Tally): Promise<void> {
  const trickle = await Promise.all(Array.from({ length: count }, () => openRaw(port)));
  const silent = await Promise.all(Array.from({ length: count }, () => openRaw(port)));
  // A frame announcing 900 bytes (under the pre-AUTH limit), sent one byte a second.
  const f = Buffer.concat([Buffer.from([0, 0, 3, 0x84]), Buffer.alloc(900, 0x61)]);
  for (let s = 0; s < seconds; s++) {
    for (const c of trickle) {
      c.write(f.subarray(s, s + 1));
      t.inputs++;
    }
    await sleep(1000);
  }
  // The silent ones have been idle `seconds` s by now; give a loaded box up to 2 idle periods more.
  await Promise.all(silent.map((c) => c.until(() => c.closed, IDLE_MS * 2)));
  const silentOpen = silent.filter((c) => !c.closed).length;
  const trickleOpen = trickle.filter((c) => !c.closed).length;
  if (silentOpen > 0)
    t.violations.push(`${silentOpen} silent connections outlived the ${IDLE_MS} ms idle timeout`);
  for (const c of [...trickle, ...silent]) c.close();
  t.note = `${count} trickling 1 B/s (${trickleOpen} still open: each holds < 1 KiB, capped by --max-clients); ${count} silent closed by idle timeout`;
}

async function pipelineNoRead(port: number, budgetMs: number, t: Tally, rss: () => number): Promise<void> {
  const setup = await authed(port);
  setup.write(req(2, 'SET', 'big', Buffer.alloc(60 * 1024, 0x62)));
  await setup.next(5000);
  setup.close();
  const conns = await Promise.all(Array.from({ length: 4 }, () => authed(port)));
  for (const c of conns) c.socket.pause();
  const batch = Buffer.concat(Array.from({ length: 1000 }, (_, i) => req(i + 10, 'GET', 'big')));
  const deadline = Date.now() + budgetMs;
  let peak = 0;
  while (Date.now() < deadline) {
    for (const c of conns) {
      if (c.socket.writableLength < 8 * 1024 * 1024) {
        c.write(batch);
        t.inputs += 1000;
      }
    }
    peak = Math.max(peak, rss());
    await sleep(20);
  }
  for (const c of conns) c.close();
  t.note = `4 connections, GETs of 60 KiB never read (${Math.round((t.inputs * 60) / 1024)} MiB of replies asked; peak RSS sampled ${Math.round(peak / 2 ** 20)} MiB)`;
}

async function oversized(port: number, count: number, t: Tally): Promise<void> {
  for (let i = 0; i < count; i++) {
    const pre = i % 2 === 0;
    const c = pre ? await openRaw(port) : await authed(port);
    const limit = pre ? 1024 : MAX_FRAME;
    const len = i % 4 < 2 ? limit + 1 : 0xffffffff;
    c.write(rawFrame(Buffer.alloc(0), len));
    c.write(Buffer.alloc(64, 0x41)); // the start of a body that must never be buffered
    t.inputs++;
    const r = await c.next(3000);
    if (!Array.isArray(r)) t.violations.push(`oversized ${len} (pre-AUTH ${pre}): ${r}, not TOO_LARGE`);
    else if ((r[2] as { code?: string } | undefined)?.code !== 'TOO_LARGE')
      t.violations.push(`oversized ${len}: reply ${JSON.stringify(r)}`);
    if (!(await c.until(() => c.closed, 3000))) t.violations.push(`oversized ${len}: connection not closed`);
    c.close();
  }
  t.note = 'length over the pre-AUTH (1 KiB) and the authenticated limit, and 2^32-1';
}

async function beforeAuth(port: number, count: number, t: Tally): Promise<void> {
  const cmds: unknown[][] = [
    ['SET', 'preauth/x', 'v'],
    ['GET', 'wb/1'],
    ['DEL', 'wb/1'],
    ['MSET', 'preauth/a', '1', 'preauth/b', '2'],
    ['INCR', 'preauth/n'],
    ['SCAN'],
    ['INFO'],
    ['COMPACT'],
    ['DBSIZE'],
  ];
  for (let i = 0; i < count; i++) {
    const c = await openRaw(port);
    for (const [j, cmd] of cmds.entries()) c.write(req(j + 1, ...cmd));
    t.inputs += cmds.length;
    for (let j = 0; j < cmds.length; j++) {
      const r = await c.next(3000);
      if (!Array.isArray(r)) {
        t.violations.push(`before AUTH: ${r}`);
        break;
      }
      if ((r[2] as { code?: string } | undefined)?.code !== 'NOAUTH')
        t.violations.push(`before AUTH ${JSON.stringify(cmds[j])} ran: ${JSON.stringify(r).slice(0, 80)}`);
    }
    c.close();
  }
  const check = await authed(port);
  check.write(req(99, 'MGET', 'preauth/x', 'preauth/a', 'preauth/b', 'preauth/n'));
  const r = await check.next(3000);
  check.close();
  if (!Array.isArray(r) || JSON.stringify(r[1]) !== JSON.stringify([null, null, null, null]))
    t.violations.push(`writes sent before AUTH are visible: ${JSON.stringify(r)}`);
  t.note = 'every command before AUTH: NOAUTH, nothing written';
}

// ---- the run --------------------------------------------------------------------

export async function runHostile(o: HostileOptions): Promise<AttackResult[]> {
  const q = o.quick;
  const wb = new WellBehaved(o.port);
  await wb.ready();
  const results: AttackResult[] = [];
  const attacks: [string, string, (t: Tally, rss: () => number) => Promise<void>][] = [
    [
      'baseline (no attack)',
      '-',
      async (t) => {
        await sleep(q ? 1000 : 3000);
        t.note = 'the well-behaved client alone';
      },
    ],
    ['fuzz frames (fast-check)', 'frames', (t) => fuzzFrames(o.port, q ? 3000 : 20_000, o.seed, t)],
    ['random bytes', 'bytes', (t) => randomBytes(o.port, q ? 2000 : 10_000, o.seed, t)],
    ['connection churn', 'connections', (t) => churn(o.port, q ? 1000 : 3000, t)],
    ['slowloris + silent', 'bytes', (t) => slowloris(o.port, q ? 20 : 100, q ? 3 : 5, t)],
    ['pipeline without reading', 'requests', (t, rss) => pipelineNoRead(o.port, q ? 2000 : 5000, t, rss)],
    ['oversized frames', 'frames', (t) => oversized(o.port, q ? 40 : 200, t)],
    ['commands before AUTH', 'commands', (t) => beforeAuth(o.port, q ? 50 : 300, t)],
  ];
  for (const [name, unit, attack] of attacks) {
    const t: Tally = { inputs: 0, violations: [], note: '' };
    let peak = rssBytes(o.pid);
    const sampler = setInterval(() => {
      peak = Math.max(peak, rssBytes(o.pid));
    }, 100);
    const t0 = Date.now();
    wb.start(name);
    try {
      await attack(t, () => rssBytes(o.pid));
    } catch (err) {
      t.violations.push(`the attack itself failed: ${(err as Error).message}`);
    }
    const lat = await wb.finish();
    clearInterval(sampler);
    peak = Math.max(peak, rssBytes(o.pid));
    const alive = o.alive();
    if (peak > RSS_BOUND_BYTES)
      t.violations.push(`server RSS ${Math.round(peak / 2 ** 20)} MiB over the bound`);
    if (wb.failures.length > 0)
      t.violations.push(...wb.failures.splice(0).map((f) => `well-behaved client: ${f}`));
    results.push({
      name,
      inputs: t.inputs,
      unit,
      crashes: alive ? 0 : 1,
      violations: t.violations,
      peakRssMiB: Math.round(peak / 2 ** 20),
      p50Ms: lat.p50,
      p99Ms: lat.p99,
      wellBehavedOps: lat.ops,
      durationS: (Date.now() - t0) / 1000,
      note: t.note,
    });
    if (!alive) break;
    await sleep(200);
  }
  const lost = o.alive() ? await wb.verify() : ['the server died; acknowledged writes not checked'];
  results.push({
    name: 'acknowledged writes read back',
    inputs: wb.acked.size,
    unit: 'keys',
    crashes: o.alive() ? 0 : 1,
    violations: lost,
    peakRssMiB: Math.round(rssBytes(o.pid) / 2 ** 20),
    p50Ms: Number.NaN,
    p99Ms: Number.NaN,
    wellBehavedOps: 0,
    durationS: 0,
    note: "the well-behaved client's last acknowledged value of each key",
  });
  await wb.close();
  return results;
}

export function summaryTable(results: AttackResult[]): string {
  const rows = [
    ['case', 'inputs tried', 'crashes', 'violations', 'peak RSS', 'well-behaved p50 / p99', 'notes'],
  ];
  for (const r of results) {
    rows.push([
      r.name,
      `${r.inputs} ${r.unit === '-' ? '' : r.unit}`.trim(),
      String(r.crashes),
      String(r.violations.length),
      `${r.peakRssMiB} MiB`,
      Number.isNaN(r.p50Ms)
        ? '-'
        : `${r.p50Ms.toFixed(2)} / ${r.p99Ms.toFixed(2)} ms (${r.wellBehavedOps} ops)`,
      r.note,
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const line = (row: string[]) => `| ${row.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [
    line(rows[0]!),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...rows.slice(1).map(line),
  ].join('\n');
}

/** Starts kv-server (`main`: its main.js) with the limits the attacks expect. */
export function startHostileServer(
  main: string,
  dir: string,
): Promise<{ proc: ChildProcess; port: number; stderr: () => string }> {
  const args = [main, '--dir', dir, '--host', '127.0.0.1', '--port', '0', '--log-level', 'info'];
  args.push(
    '--max-frame-bytes',
    String(MAX_FRAME),
    '--idle-timeout-ms',
    String(IDLE_MS),
    '--max-clients',
    '2000',
  );
  args.push('--fsync', 'interval');
  const proc = ownChild(
    spawn(process.execPath, args, {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, SEGKV_PASSWORD: PASSWORD },
    }),
  );
  let err = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`kv-server did not listen:\n${err}`)), 20_000);
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (d: string) => {
      err += d;
      if (err.length > 2_000_000) err = err.slice(-500_000);
      const m = /"port":(\d+)[^\n]*"msg":"listening"/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, port: Number(m[1]), stderr: () => err });
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`kv-server exited with ${code}:\n${err.slice(-2000)}`));
    });
  });
}

async function main(): Promise<void> {
  const values = parseOptionsStrictly(process.argv.slice(2), {
    quick: { type: 'boolean', default: false },
    seed: { type: 'string' },
    help: { type: 'boolean', default: false },
  });
  if (values.help) {
    process.stdout.write('usage: hostile [--quick] [--seed S]\n');
    return;
  }
  const seed = integerAtLeast('seed', values.seed, Date.now() % 1_000_000, 0);
  const here = dirname(fileURLToPath(import.meta.url));
  const dir = mkdtempSync(join(tmpdir(), 'segkv-hostile-'));
  const server = await startHostileServer(join(here, '..', 'src', 'server', 'main.js'), dir);
  let exited = false;
  server.proc.on('exit', () => {
    exited = true;
  });
  const started = Date.now();
  try {
    const results = await runHostile({
      port: server.port,
      pid: server.proc.pid!,
      quick: values.quick === true,
      seed,
      alive: () => !exited,
    });
    for (const r of results)
      for (const v of r.violations.slice(0, 20)) process.stdout.write(`VIOLATION ${r.name}: ${v}\n`);
    process.stdout.write(
      `\nhostile summary (seed ${seed}, ${((Date.now() - started) / 1000).toFixed(1)} s, server pid ${server.proc.pid})\n`,
    );
    process.stdout.write(`${summaryTable(results)}\n`);
    const bad = results.some((r) => r.crashes > 0 || r.violations.length > 0);
    process.exitCode = bad ? 1 : 0;
  } finally {
    server.proc.kill('SIGTERM');
    await Promise.race([
      new Promise((r) => server.proc.on('exit', r)),
      new Promise((r) => setTimeout(r, 10_000).unref()),
    ]);
    if (!exited) server.proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runHarness('hostile', main);
}
