/**
 * FrameReader.bodiesAhead, the server's look-ahead over a received batch:
 * the spans it gives are exactly the bodies nextFrame then reads, it never
 * moves the read position, and it stops at an incomplete or invalid header
 * (which nextFrame reports) or at `max`.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FrameReader } from '../../src/protocol/frame.js';

function framed(body: Buffer): Buffer {
  const f = Buffer.alloc(4 + body.length);
  f.writeUInt32BE(body.length, 0);
  body.copy(f, 4);
  return f;
}

describe('FrameReader.bodiesAhead', () => {
  it('gives the bodies nextFrame reads next, in the current buffer, without reading them', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 40 }), { minLength: 0, maxLength: 30 }),
        fc.nat({ max: 39 }),
        fc.integer({ min: 1, max: 40 }),
        fc.nat({ max: 10 }),
        (bodies, cut, max, consumed) => {
          const stream = Buffer.concat(bodies.map((b) => framed(Buffer.from(b))));
          const r = new FrameReader(1024);
          // All but the last `cut` bytes: the last frame may be incomplete.
          r.push(stream.subarray(0, Math.max(0, stream.length - cut)));
          for (let j = 0; j < consumed; j++) r.nextFrame();
          const spans = new Int32Array(2 * max);
          const n = r.bodiesAhead(spans, max);
          const again = r.bodiesAhead(new Int32Array(2 * max), max);
          expect(again).toBe(n);
          const ahead: Buffer[] = [];
          for (let k = 0; k < n; k++)
            ahead.push(Buffer.from(r.aheadBytes.subarray(spans[2 * k], spans[2 * k + 1])));
          const read: Buffer[] = [];
          for (let b = r.next(); b !== undefined; b = r.next()) read.push(Buffer.from(b));
          expect(n).toBe(Math.min(max, read.length));
          expect(ahead).toEqual(read.slice(0, n));
        },
      ),
    );
  });

  it('stops at an empty or oversized header, which nextFrame then refuses', () => {
    const r = new FrameReader(8);
    r.push(Buffer.concat([framed(Buffer.from('ab')), Buffer.from([0, 0, 0, 9]), Buffer.alloc(9)]));
    const spans = new Int32Array(8);
    expect(r.bodiesAhead(spans, 4)).toBe(1);
    expect(r.next()?.toString()).toBe('ab');
    expect(r.bodiesAhead(spans, 4)).toBe(0);
    expect(() => r.next()).toThrow();
    const e = new FrameReader(8);
    e.push(Buffer.from([0, 0, 0, 0]));
    expect(e.bodiesAhead(spans, 4)).toBe(0);
  });
});

describe('FrameReader.keep (chunks that are views of a reused buffer)', () => {
  it('reads every frame intact when each chunk is a view of one buffer reused for the next, and keep runs in between', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { minLength: 1, maxLength: 20 }),
        fc.array(fc.integer({ min: 1, max: 200 }), { minLength: 1, maxLength: 10 }),
        fc.nat({ max: 3 }),
        (bodies, sizes, readsPerChunk) => {
          const stream = Buffer.concat(bodies.map((b) => framed(Buffer.from(b))));
          const reused = Buffer.alloc(256);
          const r = new FrameReader(1024);
          const read: Buffer[] = [];
          let at = 0;
          for (let i = 0; at < stream.length; i++) {
            const n = Math.min(sizes[i % sizes.length]!, stream.length - at, reused.length);
            stream.copy(reused, 0, at, at + n);
            at += n;
            r.push(reused.subarray(0, n));
            // Sometimes read a little, sometimes all that is complete, sometimes nothing.
            for (let j = 0; j < (i % 2 === 0 ? readsPerChunk : 1000); j++) {
              const b = r.next();
              if (b === undefined) break;
              read.push(Buffer.from(b));
            }
            r.keep(reused.buffer);
            reused.fill(0xee); // the next read overwrites it
          }
          for (let b = r.next(); b !== undefined; b = r.next()) read.push(Buffer.from(b));
          expect(read.map((b) => b.toString('hex'))).toEqual(
            bodies.map((b) => Buffer.from(b).toString('hex')),
          );
        },
      ),
    );
  });
});
