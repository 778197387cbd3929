/**
 * Write replies encoded before their ack (served-connection.ts answerEarly):
 * under `interval` a pipelined write's reply is written into the output at
 * once, in request order, and the connection's output is held until the ack
 * settles. A refused log write (ENOSPC) must still answer IO_ERROR, in its
 * place, with the GETs around it intact: each early reply of a failed ack is
 * replaced by its error before anything is sent, also when a rotation inside
 * the batch splits its writes between two acks (the first fails while the
 * second is pending, so the second's positions shift). The ack has settled
 * by the time the connection flushes, so no listener is added to it.
 */
import { Packr, Unpackr } from 'msgpackr';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Store } from '../../src/engine/index.js';
import { memPath } from '../../src/engine/mem-fs.js';
import { TickAck } from '../../src/engine/tick-ack.js';
import { RawConnection, rawFrame } from '../../tools/lib/raw-connection.js';
import { type MemServer, memServer } from './in-process.js';

const packr = new Packr({ useRecords: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, int64AsType: 'number' });

const SEGMENT_BYTES = 4096;
const VALUE = Buffer.alloc(100, 0x61);

interface Rig extends MemServer {
  conn: RawConnection;
}
const rigs: Rig[] = [];

async function rig(): Promise<Rig> {
  const served = await memServer(memPath('data'), { fsync: 'interval', maxSegmentBytes: SEGMENT_BYTES });
  const r = { ...served, conn: await RawConnection.open(served.port) };
  rigs.push(r);
  for (let i = 0; i < 10; i++) await r.store.set(`g${i}`, Buffer.from(`v${i}`));
  return r;
}

afterEach(async () => {
  for (const r of rigs.splice(0)) {
    r.mem.failWrites(undefined);
    r.conn.socket.destroy();
    await r.server.close();
    await r.store.close().catch(() => {});
  }
});

/** Sends `requests` as one chunk and reads as many replies: a value, true/number, or `{ error: code }`. */
async function pipeline(conn: RawConnection, requests: unknown[][]): Promise<unknown[]> {
  conn.socket.write(Buffer.concat(requests.map((r, i) => rawFrame(packr.pack([i + 1, ...r])))));
  const out: unknown[] = [];
  for (let i = 0; i < requests.length; i++) {
    const frame = await conn.frame(5000);
    expect(frame, `reply ${i + 1} of ${requests.length}`).toBeDefined();
    const r = unpackr.unpack(frame!.subarray(4)) as unknown[];
    expect(r[0], 'replies in request order').toBe(i + 1);
    const v = r.length === 3 ? { error: (r[2] as { code: string }).code } : r[1];
    out.push(v instanceof Uint8Array ? Buffer.from(v).toString() : v);
  }
  return out;
}

/** SETs of new keys alternating with GETs of the preloaded ones, and what the GETs answer. */
function mixedBatch(sets: number): { requests: unknown[][]; gets: Map<number, string> } {
  const requests: unknown[][] = [];
  const gets = new Map<number, string>();
  for (let i = 0; i < sets; i++) {
    requests.push(['SET', `s${String(i).padStart(2, '0')}`, VALUE]);
    gets.set(requests.length, `v${i % 10}`);
    requests.push(['GET', `g${i % 10}`]);
  }
  return { requests, gets };
}

/** Writes filler keys until the active segment has room for a few SETs but not for 24. */
async function nearlyFull(store: Store): Promise<void> {
  let i = 0;
  while (store.active.size < SEGMENT_BYTES - 1500) await store.set(`f${i++}`, VALUE);
}

describe('early write replies (interval)', () => {
  it('a refused write answers IO_ERROR in its place; the GETs around it answer their values', async () => {
    const r = await rig();
    r.mem.failWrites((p) => (p.endsWith('.seg') ? 'ENOSPC' : undefined));
    const replies = await pipeline(r.conn, [
      ['GET', 'g1'],
      ['SET', 'new1', VALUE],
      ['GET', 'g2'],
      ['DEL', 'g3'],
      ['SET', 'new2', VALUE],
      ['GET', 'g4'],
    ]);
    expect(replies).toEqual([
      'v1',
      { error: 'IO_ERROR' },
      'v2',
      { error: 'IO_ERROR' },
      { error: 'IO_ERROR' },
      'v4',
    ]);
    r.mem.failWrites(undefined);
    expect(
      await pipeline(r.conn, [
        ['GET', 'new1'],
        ['GET', 'g3'],
        ['SET', 'new1', VALUE],
        ['GET', 'g5'],
      ]),
    ).toEqual([null, 'v3', true, 'v5']);
  });

  it('the ack settles before the connection flushes (the store writes first): no listener is added to it', async () => {
    // settleEarly: under `interval` the server's flush finds each early run's ack settled, so a
    // SET at pipeline 1 costs no listen() and no ackSettled call (main: one listen per SET).
    const r = await rig();
    const listen = vi.spyOn(TickAck.prototype, 'listen');
    try {
      for (let i = 0; i < 8; i++) expect(await pipeline(r.conn, [['SET', `p${i}`, VALUE]])).toEqual([true]);
      expect(
        await pipeline(r.conn, [
          ['SET', 'q1', VALUE],
          ['GET', 'g1'],
          ['SET', 'q2', VALUE],
        ]),
      ).toEqual([true, 'v1', true]);
      expect(listen).not.toHaveBeenCalled();
    } finally {
      listen.mockRestore();
    }
    expect(
      await pipeline(r.conn, [
        ['GET', 'p7'],
        ['GET', 'q2'],
      ]),
    ).toEqual([VALUE.toString(), VALUE.toString()]);
  });

  it('acked batches, then a refused one: only its own writes answer IO_ERROR, in their places', async () => {
    // The connection's run of early replies is kept across acks (spareEarly): the refused
    // batch's run must hold its own replies only, not positions left by the batches before.
    const r = await rig();
    for (let round = 0; round < 3; round++)
      expect(
        await pipeline(r.conn, [
          ['SET', `ok${round}a`, VALUE],
          ['GET', 'g1'],
          ['SET', `ok${round}b`, VALUE],
          ['SET', `ok${round}c`, VALUE],
        ]),
      ).toEqual([true, 'v1', true, true]);
    r.mem.failWrites((p) => (p.endsWith('.seg') ? 'ENOSPC' : undefined));
    expect(
      await pipeline(r.conn, [
        ['GET', 'g2'],
        ['SET', 'bad1', VALUE],
        ['GET', 'g3'],
      ]),
    ).toEqual(['v2', { error: 'IO_ERROR' }, 'v3']);
    r.mem.failWrites(undefined);
    expect(
      await pipeline(r.conn, [
        ['SET', 'good', VALUE],
        ['GET', 'bad1'],
        ['GET', 'ok2c'],
      ]),
    ).toEqual([true, null, VALUE.toString()]);
  });

  it('a rotation inside the batch: the writes it flushed fail, the later ones succeed, all in order', async () => {
    const r = await rig();
    await nearlyFull(r.store);
    const full = r.store.active.name;
    r.mem.failWrites((p) => (p.endsWith(full) ? 'ENOSPC' : undefined));
    const { requests, gets } = mixedBatch(24);
    const replies = await pipeline(r.conn, requests);
    const sets = replies.filter((_, i) => !gets.has(i));
    const failed = sets.indexOf(true);
    expect(failed, 'some writes went to the full segment, some to the next').toBeGreaterThan(0);
    expect(sets.slice(0, failed)).toEqual(new Array(failed).fill({ error: 'IO_ERROR' }));
    expect(sets.slice(failed)).toEqual(new Array(sets.length - failed).fill(true));
    for (const [i, v] of gets) expect(replies[i], `GET at ${i}`).toBe(v);
  });

  it('both acks of a batch split by a rotation fail: every write answers IO_ERROR in its place', async () => {
    const r = await rig();
    await nearlyFull(r.store);
    // The new segment's header (its first write) passes; every other segment write fails.
    const seen = new Set<string>();
    r.mem.failWrites((p) => {
      if (!p.endsWith('.seg')) return undefined;
      if (!seen.has(p) && p !== r.store.active.path) {
        seen.add(p);
        return undefined;
      }
      return 'ENOSPC';
    });
    const segments = r.store.stats().segments.length;
    const { requests, gets } = mixedBatch(24);
    const replies = await pipeline(r.conn, requests);
    expect(r.store.stats().segments.length, 'the batch rotated').toBeGreaterThan(segments);
    for (let i = 0; i < replies.length; i++)
      expect(replies[i], `reply ${i}`).toEqual(gets.has(i) ? gets.get(i) : { error: 'IO_ERROR' });
  });
});
