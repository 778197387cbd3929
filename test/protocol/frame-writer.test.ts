/** FrameWriter encodes exactly as msgpackr's Packr does, frame by frame, whatever it is given. */
import fc from 'fast-check';
import { Packr, Unpackr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { FrameReader } from '../../src/protocol/frame.js';
import { FrameWriter, ZERO_COPY_BYTES } from '../../src/protocol/frame-writer.js';

const packr = new Packr({ useRecords: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, int64AsType: 'number', mapsAsObjects: true });

function reference(values: unknown[]): Buffer {
  return Buffer.concat(
    values.map((v) => {
      const body = packr.pack(v);
      const head = Buffer.alloc(4);
      head.writeUInt32BE(body.length);
      return Buffer.concat([head, body]);
    }),
  );
}

const protocolValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.integer({ min: -(2 ** 40), max: 2 ** 40 }),
    fc.constantFrom(
      0,
      127,
      128,
      255,
      256,
      65535,
      65536,
      2 ** 32 - 1,
      2 ** 32,
      -32,
      -33,
      -128,
      -129,
      -32768,
      -32769,
    ),
    fc.constantFrom(-(2 ** 31), -(2 ** 31) - 1, 2 ** 53 - 1, -0, Number.NaN, Number.POSITIVE_INFINITY),
    fc.double(),
    fc.string({ maxLength: 40 }),
    fc.string({ unit: 'grapheme', maxLength: 40 }),
    fc.string({ minLength: 250, maxLength: 300 }),
    fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
    fc.array(tie('value'), { maxLength: 20 }),
    fc.dictionary(fc.string({ maxLength: 8 }), tie('value'), { maxKeys: 18 }),
    fc.constant(undefined),
    fc.date({ noInvalidDate: true }),
  ),
})).value;

describe('FrameWriter', () => {
  it('writes the same bytes as msgpackr for any sequence of frames', () => {
    fc.assert(
      fc.property(fc.array(protocolValue, { minLength: 1, maxLength: 30 }), (values) => {
        const w = new FrameWriter();
        for (const v of values) w.frame(v);
        expect(w.length).toBe(reference(values).length);
        const got = Buffer.concat(w.take());
        expect(got.toString('hex')).toBe(reference(values).toString('hex'));
        expect(w.length).toBe(0);
      }),
      { numRuns: 400 },
    );
  });

  it('reply(id, v) writes the same bytes as frame([id, v]), among other frames', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 2 ** 32 - 1 }), protocolValue), {
          minLength: 1,
          maxLength: 30,
        }),
        (replies) => {
          const w = new FrameWriter();
          for (const [id, v] of replies) {
            w.reply(id, v);
            w.frame(v);
          }
          const want = reference(replies.flatMap(([id, v]) => [[id, v], v]));
          expect(Buffer.concat(w.take()).toString('hex')).toBe(want.toString('hex'));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('references large values instead of copying them, and frames still parse', () => {
    const w = new FrameWriter();
    const big = Buffer.alloc(ZERO_COPY_BYTES + 10, 9);
    w.frame([1, 'small']);
    w.frame([2, big]);
    w.frame([3, { a: [big, 'x'] }]);
    const parts = w.take();
    expect(parts.some((p) => p.buffer === big.buffer)).toBe(true);
    const reader = new FrameReader(1 << 30);
    for (const p of parts) reader.push(p);
    const got: unknown[] = [];
    for (let b = reader.next(); b; b = reader.next()) got.push(unpackr.unpack(b));
    expect(got).toEqual([
      [1, 'small'],
      [2, big],
      [3, { a: [big, 'x'] }],
    ]);
  });

  it('spans buffer boundaries and takes between frames', () => {
    const w = new FrameWriter();
    const values: unknown[] = [];
    let taken = Buffer.alloc(0);
    for (let i = 0; i < 3000; i++) {
      const v = [i, 'v'.repeat(i % 200), Buffer.alloc(i % 500, i & 0xff)];
      values.push(v);
      w.frame(v);
      if (i % 7 === 0) taken = Buffer.concat([taken, ...w.take()]);
    }
    taken = Buffer.concat([taken, ...w.take()]);
    expect(taken.equals(reference(values))).toBe(true);
  });
});

describe('FrameWriter errors', () => {
  it('a value that cannot be encoded leaves no partial frame', () => {
    const w = new FrameWriter();
    w.frame([1, 'before']);
    const cyclic: unknown[] = [];
    cyclic.push(cyclic);
    expect(() => w.frame([2, 'x'.repeat(100), { deep: cyclic }])).toThrow();
    w.frame([3, 'after']);
    expect(
      Buffer.concat(w.take()).equals(
        reference([
          [1, 'before'],
          [3, 'after'],
        ]),
      ),
    ).toBe(true);
  });
});
