/**
 * Under --min-replicas-ack, a tick's writes wait for the replicas as one
 * (replication.ts ReplicatedAck): one waiter per tick in the offset-ordered
 * list, not a promise chain per write, and the connection answers them as it
 * answers the store's ack (early, held until the ack settles). What must
 * hold: replies in request order, a write of a tick no replica acknowledged
 * in time gets NOT_ENOUGH_REPLICAS in its place in the pipeline (the GETs
 * around it answered), a replica that disconnects or a server that closes
 * while writes wait ends them with that error, never a hang, and a client
 * streaming writes no replica acknowledges is paused after
 * MAX_INFLIGHT_REQUESTS of them (as when each write held a slot). The replica
 * here is a fake feed whose acknowledged offset the test sets.
 */
import { Packr, Unpackr } from 'msgpackr';
import { afterEach, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../src/engine/index.js';
import { MemFs, memPath } from '../../src/engine/mem-fs.js';
import { MAX_INFLIGHT_REQUESTS } from '../../src/protocol/limits.js';
import type { FeedStream } from '../../src/replication/feed.js';
import type { Replication } from '../../src/replication/replication.js';
import type { KvServer } from '../../src/server/server.js';
import { RawConnection, rawFrame } from '../../tools/lib/raw-connection.js';
import { silentLogger } from '../engine/helpers.js';
import { inProcessServer } from '../server/in-process.js';

const packr = new Packr({ useRecords: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, int64AsType: 'number' });

const TIMEOUT_MS = 300;
const VALUE = Buffer.alloc(100, 0x61);

interface Rig {
  store: Store;
  server: KvServer;
  repl: Replication;
  replica: { acked: number };
  port: number;
  conn: RawConnection;
}
const rigs: Rig[] = [];

async function rig(timeoutMs = TIMEOUT_MS): Promise<Rig> {
  const store = await openStore(memPath('data'), {
    fs: new MemFs(),
    logger: silentLogger,
    compaction: { auto: false },
    fsync: 'interval',
  });
  for (let i = 0; i < 10; i++) await store.set(`g${i}`, Buffer.from(`v${i}`));
  const server = inProcessServer(store, { minReplicasAck: 1, minReplicasTimeoutMs: timeoutMs });
  const { port } = await server.listen();
  const repl = server.replication;
  const f = {
    replicaPort: 1,
    acked: store.nextOffset,
    end: () => repl.feeds.delete(f as unknown as FeedStream),
  };
  repl.feeds.add(f as unknown as FeedStream);
  const r = { store, server, repl, replica: f, port, conn: await RawConnection.open(port) };
  rigs.push(r);
  return r;
}

afterEach(async () => {
  for (const r of rigs.splice(0)) {
    r.conn.socket.destroy();
    await r.server.close();
    await r.store.close().catch(() => {});
  }
});

const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await sleep(2);
  }
}

/** The replica acknowledges everything in the log now (as its ACK frame would: feed.ts onAck). */
function replicaAcksAll(r: Rig): void {
  r.replica.acked = r.store.nextOffset;
  (r.repl as unknown as { onAck(): void }).onAck();
}

/** Waiters (WAIT's and the writes') the replication holds now. */
function waiting(repl: Replication): number {
  const x = repl as unknown as { waiters: unknown[]; waitHead: number };
  return x.waiters.length - x.waitHead;
}

let nextId = 1;

/** Sends `requests` as one chunk; returns their ids. */
function send(conn: RawConnection, requests: unknown[][]): number[] {
  const ids = requests.map(() => nextId++);
  conn.socket.write(Buffer.concat(requests.map((r, i) => rawFrame(packr.pack([ids[i], ...r])))));
  return ids;
}

/** Reads replies to `ids`, in that order: a value, true, or `{ error: code }`. */
async function replies(conn: RawConnection, ids: number[]): Promise<unknown[]> {
  const out: unknown[] = [];
  for (const id of ids) {
    const frame = await conn.frame(5000);
    expect(frame, `the reply to ${id}`).toBeDefined();
    const r = unpackr.unpack(frame!.subarray(4)) as unknown[];
    expect(r[0], 'replies in request order').toBe(id);
    const v = r.length === 3 && r[2] !== undefined ? { error: (r[2] as { code: string }).code } : r[1];
    out.push(v instanceof Uint8Array ? Buffer.from(v).toString() : v);
  }
  return out;
}

describe('--min-replicas-ack: one wait per tick', () => {
  it("a tick's pipelined writes wait as one waiter, answered in order once the replica acknowledges them", async () => {
    const r = await rig();
    const start = r.store.nextOffset;
    const requests: unknown[][] = [];
    for (let i = 0; i < 40; i++) requests.push(['SET', `s${i}`, VALUE], ['GET', `g${i % 10}`]);
    const ids = send(r.conn, requests);
    await until(() => r.store.nextOffset === start + 40);
    await sleep(30); // the tick's ack settled: its writes now wait for the replica
    // One chunk is read and written in one or a few ticks; a waiter per write was 40.
    expect(waiting(r.repl)).toBeGreaterThan(0);
    expect(waiting(r.repl)).toBeLessThanOrEqual(3);
    replicaAcksAll(r);
    const got = await replies(r.conn, ids);
    for (let i = 0; i < 40; i++) {
      expect(got[2 * i]).toBe(true);
      expect(got[2 * i + 1]).toBe(`v${i % 10}`);
    }
    expect(waiting(r.repl)).toBe(0);
  });

  it('a tick no replica acknowledged in time: NOT_ENOUGH_REPLICAS for each of its writes, in place; a later tick acknowledged answers after it', async () => {
    const r = await rig();
    const t0 = Date.now();
    const first = send(r.conn, [
      ['SET', 'a', VALUE],
      ['GET', 'g1'],
      ['SET', 'b', VALUE],
      ['GET', 'a'],
      ['DEL', 'g2'],
    ]);
    await until(() => r.store.nextOffset >= 13);
    await sleep(TIMEOUT_MS / 2);
    const second = send(r.conn, [
      ['SET', 'c', VALUE],
      ['GET', 'b'],
    ]);
    // The first batch's writes time out; then the replica acknowledges everything before the second's do.
    const firstReplies = await replies(r.conn, first);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(TIMEOUT_MS - 20);
    expect(firstReplies).toEqual([
      { error: 'NOT_ENOUGH_REPLICAS' },
      'v1',
      { error: 'NOT_ENOUGH_REPLICAS' },
      'a'.repeat(100), // in the log all the same
      { error: 'NOT_ENOUGH_REPLICAS' },
    ]);
    await until(() => r.store.nextOffset === 14);
    replicaAcksAll(r);
    expect(await replies(r.conn, second)).toEqual([true, 'a'.repeat(100)]);
  });

  it('over RESP: a timed-out write answers -NOT_ENOUGH_REPLICAS in its place, an acknowledged one +OK', async () => {
    const r = await rig();
    const resp = await RawConnection.open(r.port);
    try {
      const cmd = (...args: string[]) =>
        `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
      let got = '';
      resp.socket.on('data', (d: Buffer) => {
        got += d.toString();
      });
      resp.socket.write(cmd('SET', 'r1', 'x') + cmd('GET', 'g5') + cmd('SET', 'r2', 'y'));
      await until(() => got.split('\r\n').length >= 5);
      const lines = got.split('\r\n');
      expect(lines[0]).toMatch(/^-NOT_ENOUGH_REPLICAS .*--min-replicas-ack/);
      expect(lines.slice(1, 3)).toEqual(['$2', 'v5']);
      expect(lines[3]).toMatch(/^-NOT_ENOUGH_REPLICAS /);
      got = '';
      const before = r.store.nextOffset;
      resp.socket.write(cmd('SET', 'r3', 'z'));
      await until(() => r.store.nextOffset > before && waiting(r.repl) > 0);
      replicaAcksAll(r);
      await until(() => got.length > 0);
      expect(got).toBe('+OK\r\n');
    } finally {
      resp.socket.destroy();
    }
  });

  it('a client streaming writes while the replica acknowledges nothing is paused after MAX_INFLIGHT_REQUESTS of them, and resumes with the ACKs', async () => {
    const r = await rig(30_000);
    const start = r.store.nextOffset;
    const total = MAX_INFLIGHT_REQUESTS + 4000;
    const frames: Buffer[] = [];
    for (let i = 0; i < total; i++) frames.push(rawFrame(packr.pack([nextId++, 'SET', `k${i}`, 'v'])));
    r.conn.socket.write(Buffer.concat(frames));
    await until(() => r.store.nextOffset - start >= MAX_INFLIGHT_REQUESTS);
    await sleep(200);
    // Written up to the limit (plus what the last chunk read held), not all of them: the rest waits unread.
    expect(r.store.nextOffset - start).toBeLessThan(total);
    for (let end = Date.now() + 10_000; r.store.nextOffset - start < total && Date.now() < end; ) {
      replicaAcksAll(r);
      await sleep(5);
    }
    expect(r.store.nextOffset - start).toBe(total);
  });

  it('the replica disconnects while writes wait: NOT_ENOUGH_REPLICAS after the timeout, then NOREPLICAS', async () => {
    const r = await rig();
    const ids = send(r.conn, [
      ['SET', 'x', VALUE],
      ['GET', 'g3'],
      ['SET', 'y', VALUE],
    ]);
    await until(() => waiting(r.repl) > 0);
    (r.replica as unknown as FeedStream).end('gone');
    expect(await replies(r.conn, ids)).toEqual([
      { error: 'NOT_ENOUGH_REPLICAS' },
      'v3',
      { error: 'NOT_ENOUGH_REPLICAS' },
    ]);
    expect(await replies(r.conn, send(r.conn, [['SET', 'z', VALUE]]))).toEqual([{ error: 'NOREPLICAS' }]);
    expect(waiting(r.repl)).toBe(0);
  });

  it('a client that disconnects while its writes wait, then the ACK: other clients are answered', async () => {
    const r = await rig();
    send(r.conn, [
      ['SET', 'p', VALUE],
      ['SET', 'q', VALUE],
    ]);
    await until(() => waiting(r.repl) > 0);
    r.conn.socket.destroy();
    await sleep(20);
    replicaAcksAll(r);
    const other = await RawConnection.open(r.port);
    try {
      const ids = send(other, [['SET', 'after', VALUE]]);
      await until(() => waiting(r.repl) > 0);
      replicaAcksAll(r);
      expect(await replies(other, ids)).toEqual([true]);
    } finally {
      other.socket.destroy();
    }
  });

  it('the server closes while writes wait: they get NOT_ENOUGH_REPLICAS at once, not after the timeout', async () => {
    const r = await rig();
    const ids = send(r.conn, [
      ['SET', 'm', VALUE],
      ['GET', 'g4'],
    ]);
    await until(() => waiting(r.repl) > 0);
    const t0 = Date.now();
    const closed = r.server.close();
    expect(await replies(r.conn, ids)).toEqual([{ error: 'NOT_ENOUGH_REPLICAS' }, 'v4']);
    expect(Date.now() - t0).toBeLessThan(TIMEOUT_MS);
    r.conn.socket.destroy(); // the server waits for its peers to close
    await closed;
  });
});
