/**
 * RESP write replies encoded before their ack (served-connection.ts
 * answerEarly, RespConnection.answersEarly), as the native ones
 * (test/server/early-replies.test.ts): a refused log write (ENOSPC) must
 * still answer its error, in its place, with the replies around it intact,
 * also when a rotation inside the pipeline splits its writes between two
 * acks and only the first fails (the second's positions then shift).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Store } from '../../src/engine/index.js';
import { memPath } from '../../src/engine/mem-fs.js';
import { type MemServer, memServer } from '../server/in-process.js';
import { encodeCommand, RawResp, type Reply } from './raw.js';

const SEGMENT_BYTES = 4096;
const VALUE = 'a'.repeat(100);

interface Rig extends MemServer {
  conn: RawResp;
}
const rigs: Rig[] = [];

async function rig(): Promise<Rig> {
  const served = await memServer(memPath('data'), { fsync: 'interval', maxSegmentBytes: SEGMENT_BYTES });
  const r = { ...served, conn: await RawResp.connect(served.port) };
  rigs.push(r);
  for (let i = 0; i < 10; i++) await r.store.set(`g${i}`, Buffer.from(`v${i}`));
  return r;
}

afterEach(async () => {
  for (const r of rigs.splice(0)) {
    r.mem.failWrites(undefined);
    r.conn.close();
    await r.server.close();
    await r.store.close().catch(() => {});
  }
});

/** Sends `requests` as one chunk and reads as many replies; an error reply becomes `'error'`. */
async function pipeline(conn: RawResp, requests: string[][]): Promise<Reply[]> {
  conn.send(Buffer.concat(requests.map((r) => encodeCommand(r))));
  const out: Reply[] = [];
  for (let i = 0; i < requests.length; i++) {
    const { value } = await conn.read(5000);
    out.push(value !== null && typeof value === 'object' && 'error' in value ? 'error' : value);
  }
  return out;
}

const OK = { simple: 'OK' };

/** Writes filler keys until the active segment has room for a few SETs but not for 24. */
async function nearlyFull(store: Store): Promise<void> {
  let i = 0;
  while (store.active.size < SEGMENT_BYTES - 1500) await store.set(`f${i++}`, Buffer.from(VALUE));
}

describe('RESP early write replies (interval)', () => {
  it('a refused write answers its error in its place; the replies around it are intact', async () => {
    const r = await rig();
    r.mem.failWrites((p) => (p.endsWith('.seg') ? 'ENOSPC' : undefined));
    const replies = await pipeline(r.conn, [
      ['GET', 'g1'],
      ['SET', 'new1', VALUE],
      ['GET', 'g2'],
      ['DEL', 'g3'],
      ['SETNX', 'new2', VALUE],
      ['GET', 'g4'],
      ['INCR', 'n'],
    ]);
    expect(replies).toEqual(['v1', 'error', 'v2', 'error', 'error', 'v4', 'error']);
    r.mem.failWrites(undefined);
    expect(
      await pipeline(r.conn, [
        ['GET', 'new1'],
        ['GET', 'g3'],
        ['SET', 'new1', VALUE],
        ['DEL', 'g5'],
        ['GET', 'g6'],
      ]),
    ).toEqual([null, 'v3', OK, 1, 'v6']);
  });

  it('a rotation inside the pipeline: the writes it flushed fail, the later ones succeed, all in order', async () => {
    const r = await rig();
    await nearlyFull(r.store);
    const full = r.store.active.name;
    r.mem.failWrites((p) => (p.endsWith(full) ? 'ENOSPC' : undefined));
    const requests: string[][] = [];
    for (let i = 0; i < 24; i++)
      requests.push(['SET', `s${String(i).padStart(2, '0')}`, VALUE], ['GET', `g${i % 10}`]);
    const replies = await pipeline(r.conn, requests);
    const sets = replies.filter((_, i) => i % 2 === 0);
    const failed = sets.findIndex((v) => v !== 'error');
    expect(failed, 'some writes went to the full segment, some to the next').toBeGreaterThan(0);
    expect(sets.slice(failed)).toEqual(new Array(sets.length - failed).fill(OK));
    for (let i = 1; i < replies.length; i += 2)
      expect(replies[i], `GET at ${i}`).toBe(`v${((i - 1) / 2) % 10}`);
  });
});
