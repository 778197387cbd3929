/**
 * server/socket-reads.ts: accepted sockets read into the one shared buffer
 * (net.Socket's onread) on this Node, each chunk handed on as a copy the
 * connection owns, and pause() still stops delivery (backpressure); a sink
 * that reads views gets the shared buffer itself, which the next read reuses.
 */
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  deliverChunks,
  isReadBuffer,
  memoryOf,
  partOf,
  readViewOf,
  setSink,
} from '../../src/server/socket-reads.js';
import { closeAfterTest, loopbackPair, sleep, until } from './socket-test-kit.js';

closeAfterTest();

/** A loopback server whose accepted socket delivers through deliverChunks; the client socket and what arrived. */
async function pair(): Promise<{ client: Socket; served: Socket; chunks: Buffer[]; viaOnread: boolean }> {
  const chunks: Buffer[] = [];
  let viaOnread = false;
  const { client, served } = await loopbackPair({ allowHalfOpen: true }, (s) => {
    viaOnread = deliverChunks(s, (c) => chunks.push(c));
  });
  client.setNoDelay(true);
  return { client, served, chunks, viaOnread };
}

describe('socket reads', () => {
  it('a plain accepted socket reads through the shared buffer, and each chunk is a copy that later reads leave intact', async () => {
    const { client, served, chunks, viaOnread } = await pair();
    expect(viaOnread).toBe(true);
    client.write('first chunk');
    await until(() => Buffer.concat(chunks).length === 11);
    const kept = chunks.slice();
    client.write('SECOND CHUNK, LONGER THAN THE FIRST');
    await until(() => Buffer.concat(chunks).length === 11 + 35);
    expect(Buffer.concat(kept).toString()).toBe('first chunk');
    expect(Buffer.concat(chunks).toString()).toBe('first chunkSECOND CHUNK, LONGER THAN THE FIRST');
    expect(served.bytesRead).toBe(46); // the idle clock (idle-clock.ts) reads this
  });

  it('pause() stops delivery until resume() (backpressure)', async () => {
    const { client, served, chunks } = await pair();
    served.pause();
    client.write('held back');
    await sleep(200);
    expect(chunks.length).toBe(0);
    served.resume();
    await until(() => Buffer.concat(chunks).toString() === 'held back');
  });

  it('setSink moves later chunks to a new sink; end of input is still an end event', async () => {
    const { client, served, chunks } = await pair();
    const later: Buffer[] = [];
    client.write('one');
    await until(() => chunks.length > 0);
    setSink(served, (c) => later.push(c));
    client.write('two');
    await until(() => later.length > 0);
    expect(Buffer.concat(chunks).toString()).toBe('one');
    expect(Buffer.concat(later).toString()).toBe('two');
    const ended = once(served, 'end');
    client.end();
    await ended;
  });

  it('a sink that reads views gets a view of the shared buffer, overwritten by the next read (so it must copy what it keeps)', async () => {
    const { client, served, chunks } = await pair();
    const seen: string[] = [];
    let first: Buffer | undefined;
    setSink(
      served,
      (c) => {
        expect(isReadBuffer(c)).toBe(true);
        seen.push(c.toString());
        first ??= c;
      },
      true,
    );
    client.write('AAAAAAAA');
    await until(() => seen.length === 1);
    client.write('BBBB');
    await until(() => seen.length === 2);
    expect(seen).toEqual(['AAAAAAAA', 'BBBB']);
    // The view kept past its callback now shows the second read's bytes.
    expect(first!.toString()).toBe('BBBBAAAA');
    expect(chunks.length).toBe(0);
    // Back to a copying sink: chunks are owned again.
    setSink(served, (c) => chunks.push(c));
    client.write('CC');
    await until(() => chunks.length === 1);
    expect(isReadBuffer(chunks[0]!)).toBe(false);
  });

  it('a view sink gets one kept view per read length: the same object for a later read of that length, its memory without .buffer', async () => {
    const { client, served } = await pair();
    const views: Buffer[] = [];
    const seen: string[] = [];
    const memories: ArrayBufferLike[] = [];
    setSink(
      served,
      (c) => {
        views.push(c);
        seen.push(c.toString());
        memories.push(memoryOf(c));
      },
      true,
    );
    for (const text of ['same-len-1', 'other', 'same-len-2']) {
      client.write(text);
      await until(() => seen.length === views.length && seen.at(-1) === text);
    }
    expect(seen).toEqual(['same-len-1', 'other', 'same-len-2']);
    expect(views[2]).toBe(views[0]);
    expect(views[1]).not.toBe(views[0]);
    expect(views[1]!.length).toBe(5);
    for (let i = 0; i < 3; i++) expect(memories[i]).toBe(views[i]!.buffer);
    // Outside a read callback memoryOf is plain `.buffer`, for any Uint8Array.
    const own = Buffer.from('x');
    expect(memoryOf(own)).toBe(own.buffer);
  });

  it('partOf: a place of the delivered view is the same kept view read after read, with its bytes; anything else a new view', async () => {
    const { client, served } = await pair();
    const parts: Uint8Array[] = [];
    const texts: string[] = [];
    setSink(
      served,
      (c) => {
        const part = partOf(c, 2, 3);
        parts.push(part);
        texts.push(Buffer.from(part).toString());
      },
      true,
    );
    for (const text of ['a-bcd-1', 'b-efg-22', 'c-hij-3']) {
      client.write(text);
      await until(() => texts.at(-1) === text.slice(2, 5));
    }
    expect(texts).toEqual(['bcd', 'efg', 'hij']);
    // One place (offset 2, 3 bytes) in every read, whatever the read's length: one view.
    expect(parts[1]).toBe(parts[0]);
    expect(parts[2]).toBe(parts[0]);
    // Not a chunk being delivered: a view of its own, never a kept one.
    const own = Buffer.from('--xyz--');
    const part = partOf(own, 2, 3);
    expect(Buffer.from(part).toString()).toBe('xyz');
    expect(part).not.toBe(parts[0]);
    expect(partOf(own, 2, 3)).not.toBe(part);
  });
  it("readViewOf: a DataView reading the delivered view's bytes at its indices; none for anything else", async () => {
    const { client, served } = await pair();
    const words: number[] = [];
    const others: (DataView | undefined)[] = [];
    setSink(
      served,
      (c) => {
        const view = readViewOf(c);
        if (view === undefined) throw new Error('no view of the delivered chunk');
        for (let i = 0; i + 4 <= c.length; i += 4) {
          expect(view.getUint32(i, true)).toBe(c.readUInt32LE(i));
          words.push(view.getUint32(i, true));
        }
        others.push(readViewOf(Buffer.from(c)), readViewOf(c.subarray(1)));
      },
      true,
    );
    client.write('abcdefgh');
    await until(() => words.length === 2);
    client.write('ijkl');
    await until(() => words.length === 3);
    expect(Buffer.from(Uint32Array.from(words).buffer).toString()).toBe('abcdefghijkl');
    expect(others).toEqual([undefined, undefined, undefined, undefined]);
    // A copying sink's chunks are its own: no view.
    const copies: (DataView | undefined)[] = [];
    setSink(served, (c) => copies.push(readViewOf(c)));
    client.write('mnop');
    await until(() => copies.length === 1);
    expect(copies[0]).toBeUndefined();
  });
});
