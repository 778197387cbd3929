/** peekGet and peekSet accept exactly the [id, "GET", key] and [id, "SET", key, bin] bodies they claim to, and read them as msgpackr does. */
import fc from 'fast-check';
import { Packr, Unpackr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { getRequest, peekGet, peekSet } from '../../src/protocol/get-request.js';

const packr = new Packr({ useRecords: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, int64AsType: 'number', mapsAsObjects: true });

/** The internal key bytes the general path derives from a decoded key. */
function internalBytes(key: unknown): Buffer {
  return typeof key === 'string' ? Buffer.from(key, 'utf8') : Buffer.from(key as Uint8Array);
}

describe('peekGet', () => {
  it('reads id and key of every [id, "GET", key] with an ASCII str or bin key, as msgpackr does', () => {
    const ascii = fc.string({
      minLength: 1,
      maxLength: 300,
      unit: fc.integer({ min: 0, max: 0x7f }).map((c) => String.fromCharCode(c)),
    });
    const bin = fc.uint8Array({ minLength: 1, maxLength: 70_000 }).map((b) => Buffer.from(b));
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.oneof(ascii, bin), (id, key) => {
        const body = packr.pack([id, 'GET', key]);
        expect(peekGet(body)).toBe(true);
        const [rid, , rkey] = unpackr.unpack(body) as [number, string, unknown];
        expect(getRequest.id).toBe(rid);
        const { keyStart, keyLength } = getRequest;
        expect(body.subarray(keyStart, keyStart + keyLength)).toEqual(internalBytes(rkey));
      }),
      { numRuns: 300 },
    );
  });

  it.each([
    ['lower-case command', [1, 'get', 'k']],
    ['another command', [1, 'SET', 'k']],
    ['two arguments', [1, 'GET', 'k', 'v']],
    ['no argument', [1, 'GET']],
    ['an empty key', [1, 'GET', '']],
    ['a non-ASCII str key', [1, 'GET', 'clé']],
    ['a negative id', [-1, 'GET', 'k']],
    ['an id too large for u32', [2 ** 32, 'GET', 'k']],
    ['a fractional id', [1.5, 'GET', 'k']],
    ['a key that is a number', [1, 'GET', 7]],
    ['a map', { id: 1 }],
  ])('leaves %s to the general path', (_name, value) => {
    expect(peekGet(packr.pack(value))).toBe(false);
  });

  it('leaves truncated bodies and trailing bytes to the general path', () => {
    const body = packr.pack([300, 'GET', 'some-key']);
    for (let n = 0; n < body.length; n++) expect(peekGet(body.subarray(0, n))).toBe(false);
    expect(peekGet(Buffer.concat([body, Buffer.from([0xc0])]))).toBe(false);
    expect(peekGet(body)).toBe(true);
  });
});

describe('peekSet', () => {
  it('reads id, key and value of every [id, "SET", key, bin] with an ASCII str or bin key, as msgpackr does', () => {
    const ascii = fc.string({
      minLength: 1,
      maxLength: 300,
      unit: fc.integer({ min: 0, max: 0x7f }).map((c) => String.fromCharCode(c)),
    });
    const bin = (min: number) =>
      fc.uint8Array({ minLength: min, maxLength: 70_000 }).map((b) => Buffer.from(b));
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        fc.oneof(ascii, bin(1)),
        bin(0),
        (id, key, value) => {
          const body = packr.pack([id, 'SET', key, value]);
          expect(peekSet(body)).toBe(true);
          expect(peekGet(body)).toBe(false);
          const [rid, , rkey, rvalue] = unpackr.unpack(body) as [number, string, unknown, Buffer];
          expect(getRequest.id).toBe(rid);
          const { keyStart, keyLength, valueStart, valueLength } = getRequest;
          expect(body.subarray(keyStart, keyStart + keyLength)).toEqual(internalBytes(rkey));
          expect(body.subarray(valueStart, valueStart + valueLength)).toEqual(Buffer.from(rvalue));
        },
      ),
      { numRuns: 300 },
    );
  });

  it.each([
    ['lower-case command', [1, 'set', 'k', Buffer.from('v')]],
    ['GET', [1, 'GET', 'k']],
    ['options', [1, 'SET', 'k', Buffer.from('v'), { nx: true }]],
    ['a str value', [1, 'SET', 'k', 'v']],
    ['a number value', [1, 'SET', 'k', 7]],
    ['no value', [1, 'SET', 'k']],
    ['an empty key', [1, 'SET', '', Buffer.from('v')]],
    ['a non-ASCII str key', [1, 'SET', 'clé', Buffer.from('v')]],
    ['a negative id', [-1, 'SET', 'k', Buffer.from('v')]],
    ['an id too large for u32', [2 ** 32, 'SET', 'k', Buffer.from('v')]],
    ['a key that is a number', [1, 'SET', 7, Buffer.from('v')]],
  ])('leaves %s to the general path', (_name, value) => {
    expect(peekSet(packr.pack(value))).toBe(false);
  });

  it('leaves truncated bodies and trailing bytes to the general path', () => {
    const body = packr.pack([300, 'SET', 'some-key', Buffer.alloc(300, 1)]);
    for (let n = 0; n < body.length; n++) expect(peekSet(body.subarray(0, n))).toBe(false);
    expect(peekSet(Buffer.concat([body, Buffer.from([0xc0])]))).toBe(false);
    expect(peekSet(body)).toBe(true);
  });
});

describe('with a DataView of the body (the read buffer: a str key checked by words)', () => {
  /** `body` copied into a fresh buffer at `start`, and a DataView over all of that buffer (the same indices, as socket-reads' readViewOf). */
  function placed(body: Buffer, start: number): { bytes: Buffer; view: DataView } {
    const bytes = Buffer.alloc(start + body.length + 8, 0xff);
    body.copy(bytes, start);
    return { bytes, view: new DataView(bytes.buffer, bytes.byteOffset, bytes.length) };
  }

  it('answers as without it for str keys of 1..40 bytes at any offset, with a byte >= 0x80 at each place of the key or none', () => {
    for (let n = 1; n <= 40; n++) {
      const key = 'k'.repeat(n);
      for (const [name, peek, body] of [
        ['GET', peekGet, packr.pack([9, 'GET', key])],
        ['SET', peekSet, packr.pack([9, 'SET', key, Buffer.from('value')])],
      ] as const) {
        const keyStart = body.indexOf(key, 0, 'latin1');
        for (let high = -1; high < n; high++) {
          const b = Buffer.from(body);
          if (high >= 0) b[keyStart + high] = 0x80 | ((high * 37) & 0x7f);
          for (let start = 0; start < 4; start++) {
            const { bytes, view } = placed(b, start);
            const expected = peek(b);
            expect(expected, `${name} ${n} ${high}`).toBe(high < 0);
            expect(
              peek(bytes, start, start + b.length, view),
              `${name} key of ${n}, byte ${high}, at ${start}`,
            ).toBe(expected);
            if (expected) {
              expect(getRequest.keyStart).toBe(start + keyStart);
              expect(getRequest.keyLength).toBe(n);
            }
          }
        }
      }
    }
  });

  it('takes bin keys of any bytes as they are', () => {
    const key = Buffer.from([0x80, 0xff, 0x00, 0x7f, 0xc0, 0x81]);
    const { bytes, view } = placed(packr.pack([1, 'SET', key, Buffer.from('v')]), 3);
    expect(peekSet(bytes, 3, bytes.length - 8, view)).toBe(true);
    expect(bytes.subarray(getRequest.keyStart, getRequest.keyStart + getRequest.keyLength)).toEqual(key);
  });
});
