/**
 * Encodes RESP2 / RESP3 replies (reply.ts) straight into one growing output
 * buffer shared by every RESP connection (the buffer, its growth, `take()`
 * and the zero-copy of large bulks: src/protocol/output-buffer.ts).
 *
 * RESP2 has no map, set, null, double, boolean or verbatim type: maps are
 * flat arrays, sets arrays, verbatim text a bulk string, nulls `$-1` (or
 * `*-1` for a null array), as Redis encodes them for a RESP2 client.
 */
import { OutputBuffer } from '../protocol/output-buffer.js';
import { NullArray, type Reply, RespMap, RespSet, Simple, Verbatim } from './reply.js';

export type Protocol = 2 | 3;

export class RespWriter extends OutputBuffer {
  /** Appends one reply. */
  reply(value: Reply, proto: Protocol): void {
    this.value(value, proto);
  }

  /** Appends an error reply; `message` is the whole line (prefix included). */
  error(message: string): void {
    this.ascii('-', message);
  }

  private value(v: Reply, proto: Protocol): void {
    if (v === null) {
      if (proto === 3) this.raw('_\r\n');
      else this.raw('$-1\r\n');
    } else if (typeof v === 'number') {
      this.ascii(':', String(v));
    } else if (typeof v === 'bigint') {
      this.ascii(':', v.toString());
    } else if (typeof v === 'string') {
      this.bulkString(v);
    } else if (v instanceof Uint8Array) {
      this.bulk(v);
    } else if (Array.isArray(v)) {
      this.ascii('*', String(v.length));
      for (const item of v as readonly Reply[]) this.value(item, proto);
    } else if (v instanceof Simple) {
      this.ascii('+', v.text);
    } else if (v instanceof RespMap) {
      if (proto === 3) this.ascii('%', String(v.entries.length));
      else this.ascii('*', String(v.entries.length * 2));
      for (const [k, x] of v.entries) {
        this.value(k, proto);
        this.value(x, proto);
      }
    } else if (v instanceof RespSet) {
      this.ascii(proto === 3 ? '~' : '*', String(v.items.length));
      for (const item of v.items) this.value(item, proto);
    } else if (v instanceof Verbatim) {
      if (proto === 3) {
        const n = Buffer.byteLength(v.text, 'utf8');
        this.ascii('=', String(n + 4));
        this.raw('txt:');
        this.utf8(v.text, n);
        this.raw('\r\n');
      } else this.bulkString(v.text);
    } else if (v instanceof NullArray) {
      this.raw(proto === 3 ? '_\r\n' : '*-1\r\n');
    } else {
      throw new TypeError(`not a RESP reply: ${Object.prototype.toString.call(v)}`);
    }
  }

  /** `<type><text>\r\n` for ASCII text (simple strings, errors, lengths, integers). */
  private ascii(type: string, text: string): void {
    const n = text.length;
    const at = this.reserve(n + 3);
    const buf = this.buf;
    buf[at] = type.charCodeAt(0);
    let i = 0;
    for (; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c >= 0x80) break;
      buf[at + 1 + i] = c;
    }
    if (i < n) {
      // Non-ASCII in a simple string or error: write it as UTF-8.
      this.pos = at + 1;
      this.utf8(text, Buffer.byteLength(text, 'utf8'));
      this.raw('\r\n');
      return;
    }
    buf[at + 1 + n] = 0x0d;
    buf[at + 2 + n] = 0x0a;
    this.pos = at + n + 3;
  }

  private raw(ascii: string): void {
    const n = ascii.length;
    const at = this.reserve(n);
    for (let i = 0; i < n; i++) this.buf[at + i] = ascii.charCodeAt(i);
    this.pos = at + n;
  }

  private utf8(s: string, n: number): void {
    const at = this.reserve(n);
    this.pos = at + this.buf.write(s, at, n, 'utf8');
  }

  private bulkString(s: string): void {
    const n = Buffer.byteLength(s, 'utf8');
    this.ascii('$', String(n));
    this.utf8(s, n);
    this.raw('\r\n');
  }

  private bulk(b: Uint8Array): void {
    this.ascii('$', String(b.length));
    this.bytes(b);
    this.raw('\r\n');
  }
}
