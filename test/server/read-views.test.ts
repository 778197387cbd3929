/**
 * The native connection reads requests as views of the server's one shared
 * read buffer (server/socket-reads.ts), which the next read of any socket
 * overwrites. Whatever outlives a read callback must have been copied: the
 * unread part of a frame still arriving, frames held back by backpressure,
 * a body decoded on the general path. Against a real server, each case
 * below has other reads land in the shared buffer between the parts, and
 * checks every byte that comes back: a view kept past its callback shows up
 * as a wrong value, a garbled frame or a closed connection.
 */
import { Packr } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededBytes } from '../../tools/lib/prng.js';
import { rawFrame } from '../../tools/lib/raw-connection.js';
import { RawConnection, type ServerProcess, spawnServer } from './spawn.js';

const packr = new Packr({ useRecords: false, variableMapSize: true });
const frame = (req: unknown[]) => rawFrame(packr.pack(req));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Bytes that differ from request to request: a wrong copy or an overwrite never matches. */
const pattern = (n: number, seed: number): Buffer => seededBytes(n, (seed * 2654435761) >>> 0);

let server: ServerProcess;

beforeAll(async () => {
  server = await spawnServer({ args: ['--fsync', 'never'] });
});

afterAll(async () => {
  await server?.stop('SIGKILL');
});

/** Another connection's pipelined SETs and GETs of other keys: its reads fill the shared buffer with other bytes. */
async function trample(seed: number): Promise<void> {
  const c = await RawConnection.open(server.port);
  const reqs: Buffer[] = [];
  for (let i = 0; i < 40; i++) reqs.push(frame([i, 'SET', `other:${i}`, pattern(900, seed * 100 + i)]));
  for (let i = 0; i < 40; i++) reqs.push(frame([40 + i, 'GET', `other:${i}`]));
  c.write(Buffer.concat(reqs));
  for (let i = 0; i < 80; i++) expect(await c.next(10_000)).toEqual(expect.arrayContaining([i]));
  c.close();
}

async function get(c: RawConnection, id: number, key: string): Promise<unknown> {
  c.write(frame([id, 'GET', key]));
  const reply = (await c.next(10_000)) as unknown[];
  expect(reply[0]).toBe(id);
  return reply[1];
}

describe('requests read as views of the shared read buffer', () => {
  it('a frame split over reads, with other reads in between, arrives intact (in-place SET, general-path SET, GET split in its header)', async () => {
    const c = await RawConnection.open(server.port);
    const plain = pattern(3000, 1);
    const withTtl = pattern(2500, 2);
    const parts = [
      frame([1, 'SET', 'split:plain', plain]),
      frame([2, 'SET', 'split:ttl', withTtl, { ttl: 1_000_000 }]), // options: the general path decodes a copy
      frame([3, 'GET', 'split:plain']),
    ];
    for (const [n, f] of parts.entries()) {
      // Cut inside the header for the GET, inside the value for the SETs.
      const cuts = n === 2 ? [2, 7] : [9, Math.floor(f.length / 2), f.length - 3];
      let at = 0;
      for (const cut of cuts) {
        c.write(f.subarray(at, cut));
        at = cut;
        await sleep(30); // the server has read this part; now other bytes land in the shared buffer
        await trample(n * 10 + at);
      }
      c.write(f.subarray(at));
    }
    expect(await c.next(10_000)).toEqual([1, true]);
    expect(await c.next(10_000)).toEqual([2, true]);
    const third = (await c.next(10_000)) as unknown[];
    expect(third[0]).toBe(3);
    expect(Buffer.compare(third[1] as Buffer, plain)).toBe(0);
    expect(Buffer.compare((await get(c, 4, 'split:ttl')) as Buffer, withTtl)).toBe(0);
    c.close();
  });

  it('values larger than the read buffer, pipelined in one write, are stored and read back exactly', async () => {
    const c = await RawConnection.open(server.port);
    const sizes = [64 * 1024 - 7, 64 * 1024 + 1, 300_000, 1_500_000];
    const values = sizes.map((n, i) => pattern(n, 100 + i));
    const reqs = values.map((v, i) => frame([i, 'SET', `big:${i}`, v]));
    for (let i = 0; i < values.length; i++) reqs.push(frame([10 + i, 'GET', `big:${i}`]));
    const all = Buffer.concat(reqs);
    // In pieces that end mid-frame, while another connection reads too.
    for (let at = 0; at < all.length; at += 200_003) {
      c.write(all.subarray(at, Math.min(all.length, at + 200_003)));
      if (at % 3 === 0) await trample(at);
    }
    for (let i = 0; i < values.length; i++) expect(await c.next(10_000)).toEqual([i, true]);
    for (let i = 0; i < values.length; i++) {
      const reply = (await c.next(10_000)) as unknown[];
      expect(reply[0]).toBe(10 + i);
      expect(Buffer.compare(reply[1] as Buffer, values[i]!)).toBe(0);
    }
    c.close();
  });

  it('frames held back by backpressure (received, not yet run) stay intact while other reads reuse the buffer', async () => {
    const c = await RawConnection.open(server.port);
    const big = pattern(512 * 1024, 7);
    c.write(frame([0, 'SET', 'bp:big', big]));
    expect(await c.next(10_000)).toEqual([0, true]);
    // The client stops reading: 16 GETs of 512 KiB (8 MiB of replies) pass the server's high
    // water mark, so it pauses with the SETs and GETs behind them received and not run.
    c.socket.pause();
    const reqs: Buffer[] = [];
    for (let i = 1; i <= 16; i++) reqs.push(frame([i, 'GET', 'bp:big']));
    const small = Array.from({ length: 30 }, (_, i) => pattern(200 + i, 300 + i));
    for (let i = 0; i < small.length; i++) reqs.push(frame([100 + i, 'SET', `bp:${i}`, small[i]!]));
    for (let i = 0; i < small.length; i++) reqs.push(frame([200 + i, 'GET', `bp:${i}`]));
    c.write(Buffer.concat(reqs));
    await sleep(200);
    await trample(1);
    await trample(2);
    c.socket.resume();
    for (let i = 1; i <= 16; i++) {
      const reply = (await c.next(20_000)) as unknown[];
      expect(reply[0]).toBe(i);
      expect(Buffer.compare(reply[1] as Buffer, big)).toBe(0);
    }
    for (let i = 0; i < small.length; i++) expect(await c.next(10_000)).toEqual([100 + i, true]);
    for (let i = 0; i < small.length; i++) {
      const reply = (await c.next(10_000)) as unknown[];
      expect(reply[0]).toBe(200 + i);
      expect(Buffer.compare(reply[1] as Buffer, small[i]!)).toBe(0);
    }
    c.close();
  });

  it('MSET and MGET, decoded in place, store and return exact values when their frames span reads', async () => {
    const c = await RawConnection.open(server.port);
    const values = [pattern(100, 400), pattern(70_000, 401), pattern(5, 402), pattern(200_000, 403)];
    const mset = frame([1, 'MSET', ...values.flatMap((v, i) => [`ms:${i}`, v])]);
    const mget = frame([2, 'MGET', ...values.map((_, i) => `ms:${i}`)]);
    const all = Buffer.concat([mset, mget]);
    for (let at = 0; at < all.length; at += 50_001) {
      c.write(all.subarray(at, Math.min(all.length, at + 50_001)));
      await sleep(10);
      if (at % 2 === 0) await trample(500 + at);
    }
    expect(await c.next(10_000)).toEqual([1, true]);
    const reply = (await c.next(10_000)) as unknown[];
    expect(reply[0]).toBe(2);
    const got = reply[1] as Buffer[];
    expect(got.length).toBe(values.length);
    for (let i = 0; i < values.length; i++) expect(Buffer.compare(got[i]!, values[i]!)).toBe(0);
    c.close();
  });
});
