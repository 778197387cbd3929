/**
 * The exact MessagePack body size of a request, without encoding it: the
 * client checks it against the server's frame limit (HELLO.maxFrameBytes)
 * and rejects an oversized request with TOO_LARGE before anything is sent,
 * because the server would answer a fatal TOO_LARGE and drop the connection
 * with every other request on it. Sizes follow FrameWriter's minimal
 * encoding for the types requests use (str, bin, int, float, bool, nil,
 * array, plain map); anything else is counted as its msgpackr encoding.
 */
import { packr } from '../protocol/frame.js';

function headerOfLength(n: number, fix: number): number {
  return n < fix ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
}

function numberSize(x: number): number {
  if (!Number.isInteger(x)) return 9;
  if (x >= 0) return x < 0x80 ? 1 : x < 0x100 ? 2 : x < 0x10000 ? 3 : x < 0x100000000 ? 5 : 9;
  return x >= -32 ? 1 : x >= -0x80 ? 2 : x >= -0x8000 ? 3 : x >= -0x80000000 ? 5 : 9;
}

function stringSize(s: string): number {
  const n = Buffer.byteLength(s, 'utf8');
  return headerOfLength(n, 32) + n;
}

/** Body bytes of `v` as the client encodes it. */
export function encodedSize(v: unknown): number {
  switch (typeof v) {
    case 'string':
      return stringSize(v);
    case 'number':
      return numberSize(v);
    case 'boolean':
      return 1;
    case 'object': {
      if (v === null) return 1;
      if (v instanceof Uint8Array) return (v.length < 0x100 ? 2 : v.length < 0x10000 ? 3 : 5) + v.length;
      if (Array.isArray(v)) {
        let n = v.length < 16 ? 1 : v.length < 0x10000 ? 3 : 5;
        for (const item of v) n += encodedSize(item);
        return n;
      }
      if (Object.getPrototypeOf(v) === Object.prototype) {
        const keys = Object.keys(v);
        let n = keys.length < 16 ? 1 : keys.length < 0x10000 ? 3 : 5;
        for (const k of keys) n += stringSize(k) + encodedSize((v as Record<string, unknown>)[k]);
        return n;
      }
      return packr.pack(v).length;
    }
    default:
      return packr.pack(v).length;
  }
}

/** A cheap upper bound of `encodedSize([id, name, ...args])`: when it fits, the exact size need not be computed. */
export function sizeBound(name: string, args: readonly unknown[]): number {
  let n = 5 + 5 + name.length + 5;
  for (const a of args) {
    if (a instanceof Uint8Array) n += 5 + a.length;
    else if (typeof a === 'string') n += 5 + 3 * a.length;
    else if (typeof a === 'number' || typeof a === 'boolean' || a === null) n += 9;
    else return Number.POSITIVE_INFINITY;
  }
  return n;
}
