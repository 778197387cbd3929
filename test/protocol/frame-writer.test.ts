/**
 * FrameWriter encodes exactly as msgpackr's Packr does, frame by frame, whatever it is given,
 * except where PROTOCOL.md §3 asks for more: integers beyond 32 bits as the smallest int
 * (msgpackr writes float 64) and undefined as nil (msgpackr writes an extension).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { Packr, Unpackr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { FrameReader } from '../../src/protocol/frame.js';
import { FrameWriter, ZERO_COPY_BYTES } from '../../src/protocol/frame-writer.js';
import { MAX_REPLY_BYTES } from '../../src/protocol/limits.js';

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
    fc.constantFrom(0, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, -32, -33, -128, -129, -32768, -32769),
    fc.constantFrom(-(2 ** 31), -0, 0.5, -1.5, Number.NaN, Number.POSITIVE_INFINITY),
    // Integral doubles beyond 32 bits are wide ints here, float 64 in msgpackr: tested below.
    fc.double().filter((x) => !Number.isInteger(x) || (x >= -(2 ** 31) && x < 2 ** 32)),
    fc.string({ maxLength: 40 }),
    fc.string({ unit: 'grapheme', maxLength: 40 }),
    fc.string({ minLength: 250, maxLength: 300 }),
    fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
    fc.array(tie('value'), { maxLength: 20 }),
    fc.dictionary(fc.string({ maxLength: 8 }), tie('value'), { maxKeys: 18 }),
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

  it('replyBin(id, src, from, n) writes the same bytes as reply(id, src[from, from + n)), among other frames', () => {
    const sizes = fc.oneof(
      fc.integer({ min: 0, max: 300 }),
      fc.constantFrom(64, 65, 255, 256, 65535, 65536, ZERO_COPY_BYTES - 1, ZERO_COPY_BYTES + 1),
    );
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 2 ** 32 - 1 }), sizes, fc.nat(50), fc.nat(255)), {
          minLength: 1,
          maxLength: 12,
        }),
        (replies) => {
          const w = new FrameWriter();
          const want: unknown[] = [];
          for (const [id, n, from, fill] of replies) {
            // The value sits inside a larger buffer, as a value does in the small-value cache's arena.
            const src = Buffer.alloc(from + n + 7, 0xee);
            for (let i = 0; i < n; i++) src[from + i] = (fill + i) & 0xff;
            w.replyBin(id, src, from, n);
            w.frame('between');
            want.push([id, Buffer.from(src.subarray(from, from + n))], 'between');
          }
          expect(Buffer.concat(w.take()).equals(reference(want))).toBe(true);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('replyBin from one source again and again (a GET from the small-value cache arena, a view at an offset), then from others: every reply exact', () => {
    const backing = Buffer.alloc(70_000);
    for (let i = 0; i < backing.length; i++) backing[i] = (i * 7) & 0xff;
    const arena = backing.subarray(1234, 60_000);
    const other = Buffer.from(arena.subarray(5000, 6000));
    const w = new FrameWriter();
    const want: unknown[] = [];
    const steps: [Buffer, number, number][] = [
      [arena, 0, 100],
      [arena, 300, 65],
      [arena, 58_000, 766],
      [other, 10, 200],
      [arena, 17, 129],
      [arena, 17, 3],
    ];
    for (const [id, [src, from, n]] of steps.entries()) {
      w.replyBin(id, src, from, n);
      want.push([id, Buffer.from(src.subarray(from, from + n))]);
    }
    expect(Buffer.concat(w.take()).equals(reference(want))).toBe(true);
  });

  it('after forgetSource the writer keeps nothing of the source replyBin copied from (a dropped arena can be freed)', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const w = new FrameWriter();
    const held = ((): WeakRef<Buffer> => {
      const arena = Buffer.alloc(4096, 5);
      w.replyBin(1, arena, 100, 200);
      return new WeakRef(arena);
    })();
    w.take();
    w.forgetSource();
    // A WeakRef's target lives to the end of the job that made it.
    await new Promise((r) => setTimeout(r, 10));
    gc();
    expect(held.deref()).toBeUndefined();
  });

  it('replyBin copies a value under ZERO_COPY_BYTES: changing its source afterwards changes no reply', () => {
    const w = new FrameWriter();
    const src = Buffer.alloc(ZERO_COPY_BYTES - 1, 1);
    w.replyBin(7, src, 0, 100);
    w.replyBin(8, src, 0, src.length);
    src.fill(2);
    expect(
      Buffer.concat(w.take()).equals(
        reference([
          [7, Buffer.alloc(100, 1)],
          [8, Buffer.alloc(ZERO_COPY_BYTES - 1, 1)],
        ]),
      ),
    ).toBe(true);
  });

  it('replyBin over maxBytes writes nothing and throws TOO_LARGE', () => {
    const w = new FrameWriter();
    const src = Buffer.alloc(1000, 3);
    w.reply(1, 'before');
    expect(() => w.replyBin(2, src, 10, 900, 500)).toThrow(expect.objectContaining({ code: 'TOO_LARGE' }));
    w.replyBin(3, src, 10, 400, 500);
    expect(
      Buffer.concat(w.take()).equals(
        reference([
          [1, 'before'],
          [3, Buffer.alloc(400, 3)],
        ]),
      ),
    ).toBe(true);
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

  it('takeOneAt takes what was written when it is one piece, as a place in memory, else nothing (take then gets it all)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(0, 10, 900, 5000, ZERO_COPY_BYTES), { minLength: 1, maxLength: 60 }),
        (sizes) => {
          const w = new FrameWriter();
          const values: unknown[] = [];
          const pieces: Buffer[] = [];
          // What takeOneAt took, read only after the later writes: it is never written again.
          const places: { piece: number; memory: ArrayBufferLike; start: number; length: number }[] = [];
          const takeOne = (): boolean => {
            const n = w.takeOneAt();
            if (n === 0) return false;
            places.push({ piece: pieces.length, memory: w.takenMemory!, start: w.takenStart, length: n });
            pieces.push(Buffer.alloc(0));
            return true;
          };
          for (let i = 0; i < sizes.length; i++) {
            const v = [i, Buffer.alloc(sizes[i]!, i & 0xff)];
            values.push(v);
            w.frame(v);
            if (i % 3 !== 2) continue;
            const before = w.length;
            if (takeOne()) {
              // One piece: everything written since the last take, and nothing is left.
              expect(places.at(-1)!.length).toBe(before);
              expect(w.length).toBe(0);
            } else {
              // Several pieces (a referenced large value, a full buffer): takeOneAt took nothing.
              expect(w.length).toBe(before);
              pieces.push(...w.take());
            }
          }
          takeOne();
          pieces.push(...w.take());
          for (const p of places) pieces[p.piece] = Buffer.from(new Uint8Array(p.memory, p.start, p.length));
          expect(Buffer.concat(pieces).equals(reference(values))).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("FrameWriter rewind (the server's shared writer reuses its buffer)", () => {
  it('writes from its start again only when no byte anyone may still read is there: lent places given back, nothing taken or pinned', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({
              op: fc.constant('frame' as const),
              size: fc.constantFrom(0, 10, 120, 900, 5000, 40_000),
            }),
            fc.record({ op: fc.constant('tooLarge' as const), size: fc.constantFrom(2000, 70_000) }),
            fc.record({ op: fc.constantFrom('takeOne' as const, 'take' as const, 'rewind' as const) }),
            fc.record({ op: fc.constantFrom('giveBack' as const, 'pin' as const), pick: fc.nat() }),
          ),
          { minLength: 1, maxLength: 120 },
        ),
        (ops) => {
          const w = new FrameWriter();
          // Bytes that may still be read, each with what it held when handed out.
          const lent: { memory: ArrayBufferLike; start: number; bytes: Buffer }[] = [];
          const kept: { view: Uint8Array; bytes: Buffer }[] = [];
          let fill = 1;
          for (const o of ops) {
            switch (o.op) {
              case 'frame':
                w.frame([fill, Buffer.alloc(o.size, fill++ & 0xff)]);
                break;
              case 'tooLarge':
                // A frame over its limit is rolled back, possibly to an earlier buffer.
                expect(() => w.frame([fill, Buffer.alloc(o.size, fill++ & 0xff)], 1000)).toThrow();
                break;
              case 'takeOne': {
                const n = w.takeOneAt();
                if (n > 0) {
                  const view = new Uint8Array(w.takenMemory!, w.takenStart, n);
                  lent.push({ memory: w.takenMemory!, start: w.takenStart, bytes: Buffer.from(view) });
                }
                break;
              }
              case 'take':
                for (const b of w.take()) kept.push({ view: b, bytes: Buffer.from(b) });
                break;
              case 'giveBack':
              case 'pin': {
                if (lent.length === 0) break;
                const [p] = lent.splice(o.pick % lent.length, 1);
                if (o.op === 'giveBack') w.giveBack(p!.memory, p!.bytes.length);
                else {
                  w.pin(p!.memory);
                  kept.push({ view: new Uint8Array(p!.memory, p!.start, p!.bytes.length), bytes: p!.bytes });
                }
                break;
              }
              case 'rewind':
                w.rewind();
                break;
            }
            for (const p of lent)
              expect(Buffer.from(p.memory, p.start, p.bytes.length).equals(p.bytes)).toBe(true);
            for (const k of kept) expect(Buffer.from(k.view).equals(k.bytes)).toBe(true);
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('a frame over its limit rolled back to the buffer before never lets that buffer be rewound over a place lent from it', () => {
    const w = new FrameWriter();
    // 64,009 bytes: the buffer (64 KiB) keeps ~1.5 KiB of room, enough to stay the one written to.
    w.frame([1, Buffer.alloc(64_000, 1)]);
    const n = w.takeOneAt();
    expect(n).toBe(64_009);
    const lent = Buffer.from(new Uint8Array(w.takenMemory!, w.takenStart, n));
    const place = new Uint8Array(w.takenMemory!, w.takenStart, n);
    // Its value does not fit in the room left: the frame moves to a fresh buffer, then is rolled back.
    expect(() => w.frame([2, Buffer.alloc(2000, 2)], 1000)).toThrow();
    expect(w.rewind()).toBe(false);
    w.frame([3, Buffer.alloc(100, 3)]);
    expect(Buffer.from(place).equals(lent)).toBe(true);
  });

  it('a buffer left full while a place lent from it is out is reused only once it came back', () => {
    const w = new FrameWriter();
    // 64,609 bytes: under 1 KiB of room is left, so taking them moves the writer on at once.
    w.frame([1, Buffer.alloc(64_600, 1)]);
    const n = w.takeOneAt();
    const memory = w.takenMemory!;
    const place = new Uint8Array(memory, w.takenStart, n);
    const lent = Buffer.from(place);
    for (let i = 2; i < 6; i++) {
      w.frame([i, Buffer.alloc(40_000, i)]);
      for (const b of w.take()) expect(b.length).toBeGreaterThan(0);
      w.rewind();
      expect(Buffer.from(place).equals(lent), `after frame ${i}`).toBe(true);
    }
    const made = w.buffersMade;
    w.giveBack(memory, n);
    w.rewind();
    // Now it is spare: the next buffer needed is that one, not a new one.
    w.frame([9, Buffer.alloc(40_000, 9)]);
    expect(w.buffersMade).toBe(made);
  });

  it('a tick whose replies were all copied out starts the next at the same place', () => {
    const w = new FrameWriter();
    w.reply(1, 'x'.repeat(100));
    w.reply(2, 'y'.repeat(100));
    const n = w.takeOneAt();
    const memory = w.takenMemory!;
    const start = w.takenStart;
    expect(w.rewind()).toBe(false); // lent, not given back
    w.giveBack(memory, n);
    expect(w.rewind()).toBe(true);
    w.reply(3, 'z');
    expect(w.takeOneAt()).toBeGreaterThan(0);
    expect(w.takenMemory).toBe(memory);
    expect(w.takenStart).toBe(start);
    // A place made a Buffer keeps its buffer from being written again.
    w.pin(memory);
    expect(w.rewind()).toBe(false);
  });
});

/** The body bytes FrameWriter writes for `v`, as hex. */
function body(v: unknown): string {
  const w = new FrameWriter();
  w.frame(v);
  return Buffer.concat(w.take()).subarray(4).toString('hex');
}

describe('FrameWriter integers (PROTOCOL.md §3: the smallest int format, signed only below 0)', () => {
  it('writes integers beyond 32 bits as int 64 / uint 64, never float 64', () => {
    expect(body(-(2 ** 31))).toBe('d280000000');
    expect(body(-(2 ** 31) - 1)).toBe('d3ffffffff7fffffff');
    expect(body(-(2 ** 53) + 1)).toBe('d3ffe0000000000001');
    expect(body(-(2 ** 63))).toBe('d38000000000000000');
    expect(body(2 ** 32 - 1)).toBe('ceffffffff');
    expect(body(2 ** 32)).toBe('cf0000000100000000');
    expect(body(2 ** 53 - 1)).toBe('cf001fffffffffffff');
    expect(body(2 ** 64 - 2048)).toBe('cffffffffffffff800');
    // Beyond 64 bits, and anything not integral: float 64.
    expect(body(2 ** 64)).toBe('cb43f0000000000000');
    expect(body(-(2 ** 63) - 4096)).toBe('cbc3e0000000000002');
    expect(body(1.5)).toBe('cb3ff8000000000000');
    // In a reply, among other fields.
    const w = new FrameWriter();
    w.reply(37, -2147483649);
    expect(Buffer.concat(w.take()).toString('hex')).toBe('0000000b9225d3ffffffff7fffffff');
  });

  it('every integer decodes back to itself in the smallest format that holds it', () => {
    const width = (n: number) =>
      n >= 0
        ? n < 0x80
          ? 1
          : n < 0x100
            ? 2
            : n < 0x10000
              ? 3
              : n < 2 ** 32
                ? 5
                : 9
        : n >= -32
          ? 1
          : n >= -0x80
            ? 2
            : n >= -0x8000
              ? 3
              : n >= -(2 ** 31)
                ? 5
                : 9;
    fc.assert(
      fc.property(
        fc.oneof(
          fc.maxSafeInteger(),
          fc.integer(),
          fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }).map((b) => Number(b)),
        ),
        (n) => {
          if (n >= 2 ** 64) return; // rounded up past uint 64: float 64, as above
          const hex = body(n);
          expect(hex.length / 2).toBe(width(n));
          expect(hex.startsWith('cb')).toBe(false);
          expect(unpackr.unpack(Buffer.from(hex, 'hex'))).toBe(n);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('writes undefined as nil (an extension would be outside the protocol)', () => {
    expect(body(undefined)).toBe('c0');
    expect(body({ a: undefined })).toBe('81a161c0');
  });
});

describe('FrameWriter: a frame over the limit (issue 11 E: a reply over 4 GiB went out with a wrong prefix)', () => {
  it('the default limit is what a uint32 length prefix can say', () => {
    expect(MAX_REPLY_BYTES).toBe(2 ** 32 - 1);
  });

  it('writes nothing of a frame over maxBytes and throws TOO_LARGE; frames around it are intact', () => {
    const big = Buffer.alloc(ZERO_COPY_BYTES + 1000, 7); // referenced, not copied
    for (const limit of [100, ZERO_COPY_BYTES, 2 * ZERO_COPY_BYTES + 1000]) {
      const w = new FrameWriter();
      w.reply(1, 'before');
      const values = [big, big, big];
      expect(() => w.reply(2, values, limit)).toThrow(expect.objectContaining({ code: 'TOO_LARGE' }));
      expect(() => w.frame([3, values], limit)).toThrow(expect.objectContaining({ code: 'TOO_LARGE' }));
      // Through the msgpackr fallback (a Date) too.
      expect(() => w.frame([4, new Date(0), values], limit)).toThrow(
        expect.objectContaining({ code: 'TOO_LARGE' }),
      );
      w.reply(5, 'after', limit);
      expect(
        Buffer.concat(w.take()).equals(
          reference([
            [1, 'before'],
            [5, 'after'],
          ]),
        ),
      ).toBe(true);
    }
  });

  it('a frame of exactly maxBytes is written', () => {
    const w = new FrameWriter();
    const n = reference([[1, 'x'.repeat(300)]]).length - 4;
    w.reply(1, 'x'.repeat(300), n);
    expect(() => w.reply(2, 'x'.repeat(300), n - 1)).toThrow(expect.objectContaining({ code: 'TOO_LARGE' }));
    expect(Buffer.concat(w.take()).equals(reference([[1, 'x'.repeat(300)]]))).toBe(true);
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
