/**
 * Every write command of both protocols waits on the store's tick ack
 * itself (server/acked-write.ts), not on a promise: its reply is written in
 * the same event-loop turn as the store's flush that hands its record to
 * the OS (before, a promise reaction queued the reply's socket flush one
 * turn later), and a GET pipelined behind it leaves with it. A pipeline
 * mixing every such command with GETs is answered in order, as a model says.
 *
 * The turn is counted by an immediate that requeues itself: it runs first
 * in every check phase, where both the store's flush and the server's reply
 * flush run.
 */
import { Packr, Unpackr } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../src/engine/index.js';
import type { KvServer } from '../../src/server/server.js';
import { mulberry32 } from '../../tools/lib/prng.js';
import { RawConnection, rawFrame } from '../../tools/lib/raw-connection.js';
import { removeTempDirs, silentLogger, tempDir } from '../engine/helpers.js';
import { inProcessServer } from './in-process.js';

const packr = new Packr({ useRecords: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, int64AsType: 'number' });

let store: Store;
let server: KvServer;
let port: number;

/** The event-loop turn, and the turns in which the store flushed and the server wrote replies. */
let turn = 0;
let spinning = true;
const flushTurns: number[] = [];
const replyTurns: number[] = [];

beforeAll(async () => {
  store = await openStore(tempDir(), { logger: silentLogger, fsync: 'interval' });
  server = inProcessServer(store);
  port = (await server.listen()).port;
  const seg = store.active as unknown as { flush(): void };
  const segFlush = seg.flush.bind(seg);
  seg.flush = () => {
    flushTurns.push(turn);
    segFlush();
  };
  const s = server as unknown as { flushAll(): void };
  const flushAll = s.flushAll.bind(s);
  s.flushAll = () => {
    const before = server.metrics.bytesOut;
    flushAll();
    if (server.metrics.bytesOut > before) replyTurns.push(turn);
  };
  const spin = () => {
    turn++;
    if (spinning) setImmediate(spin);
  };
  setImmediate(spin);
});

afterAll(async () => {
  spinning = false;
  await server?.close();
  await store?.close();
  removeTempDirs();
});

// ---- the two protocols, minimally ---------------------------------------------

/** A RESP request. */
function resp(...args: (string | number)[]): Buffer {
  return Buffer.from(
    `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`).join('')}`,
  );
}

/** One RESP2 reply (simple, error, integer, bulk) from the front of `b`, as text ('-ERR…', ':1', '$v', 'nil'); undefined if incomplete. */
function respReply(b: Buffer): { text: string; used: number } | undefined {
  const eol = b.indexOf('\r\n');
  if (eol < 0) return undefined;
  const line = b.subarray(1, eol).toString();
  const kind = String.fromCharCode(b[0]!);
  if (kind === '+') return { text: line, used: eol + 2 };
  if (kind === '-') return { text: `-${line}`, used: eol + 2 };
  if (kind === ':') return { text: `:${line}`, used: eol + 2 };
  if (kind !== '$') throw new Error(`unexpected RESP reply ${b.toString()}`);
  const n = Number(line);
  if (n < 0) return { text: 'nil', used: eol + 2 };
  if (b.length < eol + 2 + n + 2) return undefined;
  return { text: `$${b.subarray(eol + 2, eol + 2 + n).toString()}`, used: eol + 2 + n + 2 };
}

async function respReplies(c: RawConnection, n: number): Promise<string[]> {
  const out: string[] = [];
  const ok = await c.until(() => {
    for (;;) {
      if (out.length === n) return true;
      const r = respReply(c.received);
      if (r === undefined) return false;
      out.push(r.text);
      c.received = c.received.subarray(r.used);
    }
  }, 10_000);
  expect(ok, `${out.length} of ${n} RESP replies arrived`).toBe(true);
  return out;
}

let nextId = 1;
function native(...args: unknown[]): Buffer {
  return rawFrame(packr.pack([nextId++, ...args]));
}

async function nativeReplies(c: RawConnection, n: number): Promise<unknown[]> {
  const out: unknown[] = [];
  for (let i = 0; i < n; i++) {
    const frame = await c.frame(10_000);
    expect(frame, `native reply ${i} of ${n}`).toBeDefined();
    const r = unpackr.unpack(frame!.subarray(4)) as unknown[];
    out.push(r.length === 3 ? { error: (r[2] as { code: string }).code } : r[1]);
  }
  return out;
}

/**
 * Sends `requests` (a write, then a GET) as one chunk, waits for their
 * replies, and checks both were written in the turn of the store's flush.
 */
async function inFlushTurn(send: () => Promise<unknown[]>, what: string): Promise<unknown[]> {
  flushTurns.length = 0;
  replyTurns.length = 0;
  const replies = await send();
  expect(flushTurns.length, `${what}: the store flushed`).toBeGreaterThan(0);
  expect(replyTurns, `${what}: replies written in the turn of the flush (turn ${flushTurns[0]})`).toEqual([
    flushTurns[flushTurns.length - 1],
  ]);
  return replies;
}

// ---- the tests ------------------------------------------------------------------

describe('write commands reply in the turn of the flush', () => {
  it('native: SET (plain and with options), DEL, MSET, INCR, EXPIRE, PEXPIRE, PERSIST', async () => {
    const c = await RawConnection.open(port);
    try {
      const cases: [unknown[], unknown][] = [
        [['SET', 'nk', 'v1'], true],
        [['SET', 'nk', 'v2', { ttl: 60_000 }], true],
        [['SET', 'nk', 'v3', { nx: true }], false],
        [['SET', 'nk', 'v4', { xx: true }], true],
        [['PEXPIRE', 'nk', 60_000], true],
        [['EXPIRE', 'nk', 60], true],
        [['PERSIST', 'nk'], true],
        [['PERSIST', 'nk'], false],
        [['MSET', 'nk', 'v5', 'nk2', 'w'], true],
        [['INCR', 'nn'], 1],
        [['INCR', 'nn', 5], 6],
        [['DEL', 'nk2'], 1],
        [['DEL', 'nk2', 'nn'], 1],
        [['DEL', 'absent'], 0],
        [['PEXPIRE', 'nk', 0], true],
      ];
      for (const [cmd, want] of cases) {
        const replies = await inFlushTurn(async () => {
          c.write(Buffer.concat([native(...cmd), native('GET', 'nk')]));
          return nativeReplies(c, 2);
        }, JSON.stringify(cmd));
        expect(replies[0], JSON.stringify(cmd)).toEqual(want);
      }
    } finally {
      c.close();
    }
  }, 60_000);

  it('RESP: SET (plain and with options), SETNX, SETEX, PSETEX, GETSET, GETDEL, GETEX, MSET, MSETNX, INCR…, APPEND, DEL, UNLINK, the EXPIRE family, PERSIST', async () => {
    const c = await RawConnection.open(port);
    try {
      const later = Date.now() + 600_000;
      // (A RESP write that writes nothing — SET NX on an existing key, MSETNX, GETDEL of
      // an absent key, an EXPIRE whose condition fails — answers at once, without an ack.)
      const cases: [(string | number)[], string][] = [
        [['SET', 'rk', 'a'], 'OK'],
        [['SET', 'rk', 'b', 'EX', 100], 'OK'],
        [['SET', 'rk', 'c', 'KEEPTTL'], 'OK'],
        [['SET', 'rk', 'e', 'XX', 'GET'], '$c'],
        [['SET', 'rk', 'f', 'PX', 100_000], 'OK'],
        [['SETNX', 'rk2', 'x'], ':1'],
        [['SETEX', 'rk2', 100, 'y'], 'OK'],
        [['PSETEX', 'rk2', 100_000, 'z'], 'OK'],
        [['GETSET', 'rk2', 'q'], '$z'],
        [['GETDEL', 'rk2'], '$q'],
        [['GETEX', 'rk', 'EX', 100], '$f'],
        [['GETEX', 'rk', 'PERSIST'], '$f'],
        [['MSET', 'rk', 'g', 'rk2', 'h'], 'OK'],
        [['MSETNX', 'rk3', 'i', 'rk4', 'j'], ':1'],
        [['INCR', 'rn'], ':1'],
        [['INCRBY', 'rn', 10], ':11'],
        [['DECR', 'rn'], ':10'],
        [['DECRBY', 'rn', 3], ':7'],
        [['APPEND', 'rk', 'gg'], ':3'],
        [['EXPIRE', 'rk', 100], ':1'],
        [['PEXPIRE', 'rk', 100_000], ':1'],
        [['EXPIREAT', 'rk', Math.floor(later / 1000)], ':1'],
        [['PEXPIREAT', 'rk', later], ':1'],
        [['PERSIST', 'rk'], ':1'],
        [['DEL', 'rk2', 'rn', 'absent'], ':2'],
        [['UNLINK', 'rk3', 'rk4'], ':2'],
        [['PEXPIRE', 'rk', -1], ':1'],
      ];
      for (const [cmd, want] of cases) {
        const replies = await inFlushTurn(async () => {
          c.write(Buffer.concat([resp(...cmd), resp('GET', 'rk')]));
          return respReplies(c, 2);
        }, cmd.join(' '));
        expect(replies[0], cmd.join(' ')).toBe(want);
      }
    } finally {
      c.close();
    }
  }, 60_000);
});

describe('a pipeline of writes and GETs', () => {
  const KEYS = ['p0', 'p1', 'p2', 'p3', 'p4'];
  const COUNTERS = ['c0', 'c1'];

  it('native: answered in order, as a model says', async () => {
    const c = await RawConnection.open(port);
    const model = new Map<string, string>();
    const ttl = new Set<string>();
    const rand = mulberry32(7);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    try {
      for (let round = 0; round < 40; round++) {
        const requests: Buffer[] = [];
        const want: unknown[] = [];
        for (let i = 0; i < 30; i++) {
          const k = pick(KEYS);
          const v = `v${round}.${i}`;
          const r = rand();
          if (r < 0.3) {
            requests.push(native('GET', k));
            want.push(model.has(k) ? Buffer.from(model.get(k)!) : null);
          } else if (r < 0.4) {
            requests.push(native('SET', k, v));
            model.set(k, v);
            ttl.delete(k);
            want.push(true);
          } else if (r < 0.5) {
            const nx = rand() < 0.5;
            requests.push(native('SET', k, v, nx ? { nx: true, ttl: 60_000 } : { xx: true }));
            const write = nx ? !model.has(k) : model.has(k);
            if (write) {
              model.set(k, v);
              if (nx) ttl.add(k);
              else ttl.delete(k);
            }
            want.push(write);
          } else if (r < 0.6) {
            const k2 = pick(KEYS);
            requests.push(native('DEL', k, k2));
            let n = 0;
            for (const x of new Set([k, k2])) if (model.delete(x)) n++;
            ttl.delete(k);
            ttl.delete(k2);
            want.push(n);
          } else if (r < 0.7) {
            const k2 = pick(KEYS);
            requests.push(native('MSET', k, v, k2, `${v}b`));
            model.set(k, v);
            model.set(k2, `${v}b`);
            ttl.delete(k);
            ttl.delete(k2);
            want.push(true);
          } else if (r < 0.8) {
            const n = pick(COUNTERS);
            requests.push(native('INCR', n, 2));
            const next = Number(model.get(n) ?? 0) + 2;
            model.set(n, String(next));
            want.push(next);
            requests.push(native('GET', n));
            want.push(Buffer.from(String(next)));
          } else if (r < 0.9) {
            requests.push(native('PEXPIRE', k, 60_000));
            if (model.has(k)) ttl.add(k);
            want.push(model.has(k));
          } else {
            requests.push(native('PERSIST', k));
            want.push(ttl.delete(k) && model.has(k));
          }
        }
        c.write(Buffer.concat(requests));
        const got = await nativeReplies(c, want.length);
        expect(got, `round ${round}`).toEqual(want);
      }
    } finally {
      c.close();
    }
  }, 60_000);

  it('RESP: answered in order, as a model says', async () => {
    const c = await RawConnection.open(port);
    const model = new Map<string, string>();
    const ttl = new Set<string>();
    const rand = mulberry32(11);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const bulk = (k: string) => (model.has(k) ? `$${model.get(k)}` : 'nil');
    try {
      for (let round = 0; round < 40; round++) {
        const requests: Buffer[] = [];
        const want: string[] = [];
        for (let i = 0; i < 30; i++) {
          const k = `r${pick(KEYS)}`;
          const v = `v${round}.${i}`;
          const r = rand();
          if (r < 0.3) {
            requests.push(resp('GET', k));
            want.push(bulk(k));
          } else if (r < 0.38) {
            requests.push(resp('SET', k, v));
            model.set(k, v);
            ttl.delete(k);
            want.push('OK');
          } else if (r < 0.46) {
            requests.push(resp('SET', k, v, 'NX', 'EX', 100));
            if (model.has(k)) want.push('nil');
            else {
              model.set(k, v);
              ttl.add(k);
              want.push('OK');
            }
          } else if (r < 0.52) {
            requests.push(resp('SET', k, v, 'XX', 'GET'));
            want.push(bulk(k));
            if (model.has(k)) {
              model.set(k, v);
              ttl.delete(k);
            }
          } else if (r < 0.58) {
            requests.push(resp('GETSET', k, v));
            want.push(bulk(k));
            model.set(k, v);
            ttl.delete(k);
          } else if (r < 0.63) {
            requests.push(resp('GETDEL', k));
            want.push(bulk(k));
            model.delete(k);
            ttl.delete(k);
          } else if (r < 0.7) {
            const k2 = `r${pick(KEYS)}`;
            requests.push(resp('DEL', k, k2));
            let n = 0;
            for (const x of new Set([k, k2])) if (model.delete(x)) n++;
            ttl.delete(k);
            ttl.delete(k2);
            want.push(`:${n}`);
          } else if (r < 0.76) {
            const k2 = `r${pick(KEYS)}`;
            requests.push(resp('MSET', k, v, k2, `${v}b`));
            model.set(k, v);
            model.set(k2, `${v}b`);
            ttl.delete(k);
            ttl.delete(k2);
            want.push('OK');
          } else if (r < 0.82) {
            const n = `r${pick(COUNTERS)}`;
            requests.push(resp('INCRBY', n, 3));
            const next = Number(model.get(n) ?? 0) + 3;
            model.set(n, String(next));
            want.push(`:${next}`);
          } else if (r < 0.88) {
            requests.push(resp('APPEND', k, 'x'));
            model.set(k, `${model.get(k) ?? ''}x`);
            want.push(`:${model.get(k)!.length}`);
          } else if (r < 0.94) {
            requests.push(resp('PEXPIRE', k, 100_000));
            want.push(model.has(k) ? ':1' : ':0');
            if (model.has(k)) ttl.add(k);
          } else {
            requests.push(resp('PERSIST', k));
            want.push(model.has(k) && ttl.delete(k) ? ':1' : ':0');
          }
        }
        c.write(Buffer.concat(requests));
        const got = await respReplies(c, want.length);
        expect(got, `round ${round}`).toEqual(want);
      }
    } finally {
      c.close();
    }
  }, 60_000);
});
