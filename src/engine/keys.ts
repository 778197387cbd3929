/**
 * Converting and validating user keys and values. Inside the engine a key is
 * the latin1 string of its bytes: flat, one byte per char, any byte sequence
 * representable, and `key.length` is its size on disk. ASCII strings are
 * their own latin1 form, so the common case costs one length check.
 */
import { KvError } from '../errors.js';
import { MAX_KEY_BYTES, MAX_TTL_MS, MAX_VALUE_BYTES } from './limits.js';

export type Key = string | Uint8Array;
export type Value = string | Uint8Array;

/** The internal (latin1-of-UTF-8) form of a string, without validation: for prefixes and ranges. */
export function internalize(s: string): string {
  return Buffer.byteLength(s, 'utf8') === s.length ? s : Buffer.from(s, 'utf8').toString('latin1');
}

/** `internalize` for a key given as a string or bytes, without validation: for prefixes and ranges. */
export function internalizeKey(k: Key): string {
  if (typeof k === 'string') return internalize(k);
  if (k instanceof Uint8Array) return Buffer.from(k.buffer, k.byteOffset, k.byteLength).toString('latin1');
  throw new KvError(
    'INVALID_ARGUMENT',
    `a key prefix or bound must be a string or a Buffer, got ${typeof k}`,
  );
}

/** True if every char of `s` is ASCII, i.e. `s` is its own latin1-of-UTF-8 form. */
function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

/** Buffer's own latin1 decoder (node:buffer; not in @types/node). */
interface Latin1Slicer {
  latin1Slice(start: number, end: number): string;
}

/** Buffer's latin1Slice, read once: `buf.latin1Slice` left a LoadIC call in the server's optimised SET path (~35 instructions). */
const latin1Slice = (Buffer.prototype as unknown as Partial<Latin1Slicer>).latin1Slice;

/**
 * `buf.toString('latin1', start, end)` for a Buffer and a valid range, by
 * the method that call ends in: no encoding lookup or range normalising,
 * about half the cost for a key-sized range (hot: the server's SET and GET).
 */
export const latin1Of: (buf: Buffer, start: number, end: number) => string =
  typeof latin1Slice === 'function'
    ? (buf, start, end) => latin1Slice.call(buf, start, end)
    : (buf, start, end) => buf.toString('latin1', start, end); // a Node without it: the public call

export function toInternalKey(key: Key): string {
  let k: string;
  if (typeof key === 'string') {
    // A JS loop beats the native Buffer.byteLength call on short keys (the common case).
    k = isAscii(key) ? key : Buffer.from(key, 'utf8').toString('latin1');
  } else if (key instanceof Buffer) {
    k = latin1Of(key, 0, key.length); // the server's keys: no Buffer made over the bytes
  } else if (key instanceof Uint8Array) {
    k = Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');
  } else {
    throw new KvError('INVALID_KEY', `a key must be a string or a Buffer, got ${typeof key}`);
  }
  if (k.length === 0) throw new KvError('INVALID_KEY', 'a key must not be empty');
  if (k.length > MAX_KEY_BYTES) {
    throw new KvError('INVALID_KEY', `a key must be at most ${MAX_KEY_BYTES} bytes, got ${k.length}`);
  }
  return k;
}

/** The key's exact bytes. */
export function toKeyBytes(k: string): Buffer {
  return Buffer.from(k, 'latin1');
}

/** The key as the user sees it: UTF-8 decoded (lossy for bytes that are not UTF-8: see toKeyBytes). */
export function toUserKey(k: string): string {
  for (let i = 0; i < k.length; i++) {
    if (k.charCodeAt(i) > 0x7f) return Buffer.from(k, 'latin1').toString('utf8');
  }
  return k;
}

export function toValueBytes(value: Value): Uint8Array {
  let v: Uint8Array;
  if (typeof value === 'string') v = Buffer.from(value, 'utf8');
  else if (value instanceof Uint8Array) v = value;
  else throw new KvError('INVALID_VALUE', `a value must be a string or a Buffer, got ${typeof value}`);
  if (v.length > MAX_VALUE_BYTES) {
    throw new KvError('INVALID_VALUE', `a value must be at most ${MAX_VALUE_BYTES} bytes, got ${v.length}`);
  }
  return v;
}

/**
 * Checks a time to live in ms (`what` names it in the message): a positive
 * integer at most MAX_TTL_MS, so that `now + ttl` fits the record's expiry
 * exactly (limits.ts). Throws INVALID_ARGUMENT otherwise.
 */
export function checkTtlMs(ttlMs: unknown, what: string): number {
  if (typeof ttlMs !== 'number' || !Number.isInteger(ttlMs) || ttlMs <= 0) {
    throw new KvError(
      'INVALID_ARGUMENT',
      `${what} must be a positive integer number of ms, got ${String(ttlMs)}`,
    );
  }
  if (ttlMs > MAX_TTL_MS) {
    throw new KvError(
      'INVALID_ARGUMENT',
      `${what} must be at most ${MAX_TTL_MS} ms (2^52, about 142,000 years: the largest expiry the log keeps exactly), got ${ttlMs}`,
    );
  }
  return ttlMs;
}
