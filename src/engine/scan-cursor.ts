/**
 * SCAN cursors, format version 1: opaque to clients, verifiable by the
 * process that made them, so a cursor from anywhere else (typed by hand,
 * from another server, from before a restart, a well-formed base64url string
 * this process never returned) is refused with INVALID_ARGUMENT instead of
 * being read as "scan complete" or as some position in the key space.
 *
 *   byte  size  field
 *   0     1     version (1)
 *   1     16    tag: HMAC-SHA256(process key, bytes 0 and 17..end)[0, 16)
 *   17    k     the last key of the page (its bytes), 1..MAX_KEY_BYTES
 *
 * The whole is base64url without padding (RFC 4648 §5). The HMAC key is 32
 * random bytes drawn once per process: a cursor is good for the life of the
 * process that returned it, on any of its stores (a scan resumes after the
 * key, which is meaningful for any store), and is refused after a restart.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { KvError } from '../errors.js';
import { MAX_KEY_BYTES } from './limits.js';

export const CURSOR_VERSION = 1;
const VERSION_BYTES = 1;
const TAG_BYTES = 16;
const HEADER_BYTES = VERSION_BYTES + TAG_BYTES;

/** Drawn once per process; never leaves it. */
const PROCESS_KEY = randomBytes(32);

const BASE64URL = /^[A-Za-z0-9_-]+$/;

function tag(version: number, key: Buffer): Buffer {
  return createHmac('sha256', PROCESS_KEY)
    .update(Buffer.of(version))
    .update(key)
    .digest()
    .subarray(0, TAG_BYTES);
}

/** The cursor that resumes a scan after `lastKey` (an internal latin1 key). */
export function encodeCursor(lastKey: string): string {
  const key = Buffer.from(lastKey, 'latin1');
  return Buffer.concat([Buffer.of(CURSOR_VERSION), tag(CURSOR_VERSION, key), key]).toString('base64url');
}

/** The last key (internal latin1) of the cursor `cursor`; INVALID_ARGUMENT unless this process made it. */
export function decodeCursor(cursor: string): string {
  const bytes =
    typeof cursor === 'string' && BASE64URL.test(cursor) ? Buffer.from(cursor, 'base64url') : undefined;
  if (
    bytes === undefined ||
    bytes.length <= HEADER_BYTES ||
    bytes.length > HEADER_BYTES + MAX_KEY_BYTES ||
    bytes[0] !== CURSOR_VERSION ||
    bytes.toString('base64url') !== cursor
  ) {
    throw foreign();
  }
  const key = bytes.subarray(HEADER_BYTES);
  if (!timingSafeEqual(bytes.subarray(VERSION_BYTES, HEADER_BYTES), tag(CURSOR_VERSION, key)))
    throw foreign();
  return key.toString('latin1');
}

function foreign(): KvError {
  return new KvError(
    'INVALID_ARGUMENT',
    'scan cursor is not one this server process returned; start the scan again without a cursor',
  );
}
