/**
 * SlabFrameReader (src/client/slab-frames.ts): frames cut anywhere by the
 * chunks (the chunk buffer reused and overwritten after every push, as a
 * socket's onread buffer is) come out whole and exact; a held frame is never
 * overwritten by the frames after it; released slabs are reused, so the
 * slabs allocated stay few however many bytes pass; the length prefix is
 * refused before its body is buffered.
 */
import { describe, expect, it } from 'vitest';
import { type Slab, SlabFrameReader } from '../../src/client/slab-frames.js';
import { FrameError } from '../../src/protocol/frame.js';

/** A deterministic pseudo-random source. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function framed(body: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  return Buffer.concat([head, body]);
}

function body(n: number, tag: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (tag * 31 + i * 7) & 0xff;
  return b;
}

describe('SlabFrameReader', () => {
  it('reassembles frames cut at any byte, from a chunk buffer overwritten after each push; held frames stay intact until released; slabs are reused', () => {
    const rand = rng(7);
    const SLAB = 4096;
    const got: Buffer[] = [];
    const held: { view: Buffer; want: Buffer; slab: Slab | undefined }[] = [];
    let holdNext = false;
    const reader = new SlabFrameReader(
      1 << 20,
      (b) => {
        got.push(Buffer.from(b));
        if (holdNext) held.push({ view: b, want: Buffer.from(b), slab: reader.hold() });
      },
      SLAB,
      2,
    );
    const sent: Buffer[] = [];
    const chunk = Buffer.alloc(700);
    let total = 0;
    for (let round = 0; round < 1500; round++) {
      // Frames of 1 B to a bit over a slab (those get a buffer of their own).
      const n = 1 + Math.floor(rand() * (rand() < 0.05 ? SLAB * 1.5 : SLAB / 3));
      const b = body(n, round);
      sent.push(b);
      const wire = framed(b);
      total += wire.length;
      holdNext = rand() < 0.3;
      for (let at = 0; at < wire.length; ) {
        const len = Math.min(wire.length - at, 1 + Math.floor(rand() * chunk.length));
        wire.copy(chunk, 0, at, at + len);
        reader.push(chunk, 0, len);
        chunk.fill(0xee); // the read buffer is reused for the next read
        at += len;
      }
      // Every held frame is still what it was, whatever came after it.
      for (const h of held) expect(h.view.equals(h.want)).toBe(true);
      // Release the older holds now and then (a replica recycles after applying).
      if (rand() < 0.3) for (const h of held.splice(0, held.length - 1)) reader.release(h.slab);
    }
    expect(got.length).toBe(sent.length);
    for (let i = 0; i < sent.length; i++) expect(got[i]!.equals(sent[i]!)).toBe(true);
    expect(reader.partial).toBe(false);
    // Far more bytes than slabs: they were reused.
    expect(total).toBeGreaterThan(100 * SLAB);
    expect(reader.allocated).toBeLessThan(total / SLAB / 4);
  });

  it('with every frame released at once, one slab serves the whole stream', () => {
    const reader = new SlabFrameReader(1 << 20, () => reader.release(reader.hold()), 4096, 2);
    for (let i = 0; i < 1000; i++) reader.push(framed(body(1 + (i % 1500), i)));
    expect(reader.allocated).toBe(1);
  });

  it('refuses a length prefix over the limit or of 0 before buffering any of the body', () => {
    const reader = new SlabFrameReader(100, () => {}, 4096);
    const big = Buffer.alloc(4);
    big.writeUInt32BE(101);
    expect(() => reader.push(big)).toThrow(FrameError);
    expect(reader.allocated).toBe(0);
    const zero = new SlabFrameReader(100, () => {}, 4096);
    expect(() => zero.push(Buffer.alloc(4))).toThrow(/length 0/);
  });
});
