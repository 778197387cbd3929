/**
 * kv-cli's quoting, the same as redis-cli's (sdssplitargs / sdscatrepr):
 *
 *   input   words split on whitespace; "double quotes" take the escapes
 *           \xHH \n \r \t \b \a \\ \" (any other \c is c); 'single quotes'
 *           take only \' ; a closing quote must end the word. A quote may
 *           start in the middle of a word: foo"bar baz" is one word.
 *   output  "quoted": \\ \" \n \r \t \a \b escaped, control bytes and bytes
 *           that are not valid UTF-8 as \xHH. Unlike redis-cli, printable
 *           UTF-8 is shown as is rather than byte by byte.
 *
 * Arguments are bytes (Buffer): \x escapes can make any byte sequence.
 */

const BACKSLASH = 0x5c;
const DQUOTE = 0x22;
const SQUOTE = 0x27;

function isSpace(c: number): boolean {
  // isspace(): space, \t \n \v \f \r; redis-cli also ends a bare word at NUL.
  return c === 0x20 || (c >= 0x09 && c <= 0x0d) || c === 0;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

const ESCAPES: Record<number, number> = { 110: 0x0a, 114: 0x0d, 116: 0x09, 98: 0x08, 97: 0x07 };

/** Why a line could not be split: the message redis-cli users know, with the reason. */
export class QuoteError extends Error {
  constructor(reason: string) {
    super(`Invalid argument(s): ${reason}`);
    this.name = 'QuoteError';
  }
}

/** Splits a line of bytes into arguments; throws QuoteError on unbalanced quotes. */
export function splitArgBytes(line: Uint8Array): Buffer[] {
  const args: Buffer[] = [];
  const n = line.length;
  let p = 0;
  for (;;) {
    while (p < n && isSpace(line[p]!)) p++;
    if (p >= n) return args;
    const cur: number[] = [];
    let inDouble = false;
    let inSingle = false;
    let done = false;
    while (!done) {
      if (inDouble) {
        if (p >= n) throw new QuoteError('unbalanced double quote');
        const c = line[p]!;
        const hi = c === BACKSLASH && p + 3 < n && line[p + 1] === 0x78 ? hexValue(line[p + 2]!) : -1;
        const lo = hi >= 0 ? hexValue(line[p + 3]!) : -1;
        if (lo >= 0) {
          cur.push(hi * 16 + lo);
          p += 3;
        } else if (c === BACKSLASH && p + 1 < n) {
          p++;
          const e = line[p]!;
          cur.push(ESCAPES[e] ?? e);
        } else if (c === DQUOTE) {
          if (p + 1 < n && !isSpace(line[p + 1]!)) {
            throw new QuoteError('a closing double quote must be followed by a space');
          }
          done = true;
        } else cur.push(c);
      } else if (inSingle) {
        if (p >= n) throw new QuoteError('unbalanced single quote');
        const c = line[p]!;
        if (c === BACKSLASH && p + 1 < n && line[p + 1] === SQUOTE) {
          p++;
          cur.push(SQUOTE);
        } else if (c === SQUOTE) {
          if (p + 1 < n && !isSpace(line[p + 1]!)) {
            throw new QuoteError('a closing single quote must be followed by a space');
          }
          done = true;
        } else cur.push(c);
      } else if (p >= n) {
        done = true;
      } else {
        const c = line[p]!;
        if (isSpace(c)) done = true;
        else if (c === DQUOTE) inDouble = true;
        else if (c === SQUOTE) inSingle = true;
        else cur.push(c);
      }
      if (p < n) p++;
    }
    args.push(Buffer.from(cur));
  }
}

/** Splits a line typed as text (UTF-8). */
export function splitArgs(line: string): Buffer[] {
  return splitArgBytes(Buffer.from(line, 'utf8'));
}

/** Length of the valid UTF-8 sequence at `i` that is a printable character, or 0. */
function printableUtf8At(b: Uint8Array, i: number): number {
  const c = b[i]!;
  let len: number;
  let cp: number;
  if (c >= 0xc2 && c <= 0xdf) {
    len = 2;
    cp = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    cp = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    cp = c & 0x07;
  } else return 0;
  if (i + len > b.length) return 0;
  for (let k = 1; k < len; k++) {
    const cc = b[i + k]!;
    if ((cc & 0xc0) !== 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3f);
  }
  const min = len === 2 ? 0x80 : len === 3 ? 0x800 : 0x10000;
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  if (cp <= 0x9f || cp === 0x2028 || cp === 0x2029 || cp === 0xfeff) return 0; // C1 controls, line separators, BOM
  return len;
}

const SHOWN_ESCAPES: Record<number, string> = {
  92: '\\\\',
  34: '\\"',
  10: '\\n',
  13: '\\r',
  9: '\\t',
  7: '\\a',
  8: '\\b',
};

/** A value as redis-cli shows it: double-quoted, escaped so it can be typed back. */
export function quote(bytes: Uint8Array): string {
  let out = '"';
  let i = 0;
  while (i < bytes.length) {
    const c = bytes[i]!;
    const esc = SHOWN_ESCAPES[c];
    if (esc !== undefined) {
      out += esc;
      i++;
    } else if (c >= 0x20 && c < 0x7f) {
      out += String.fromCharCode(c);
      i++;
    } else {
      const len = c >= 0x80 ? printableUtf8At(bytes, i) : 0;
      if (len > 0) {
        out += Buffer.from(bytes.buffer, bytes.byteOffset + i, len).toString('utf8');
        i += len;
      } else {
        out += `\\x${c.toString(16).padStart(2, '0')}`;
        i++;
      }
    }
  }
  return out + '"';
}
