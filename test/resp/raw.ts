/**
 * Test helper: a bare RESP client that keeps every reply's exact bytes, so
 * tests can compare segkv's replies with redis-server's byte for byte. It
 * parses RESP2 and RESP3 replies (`+ - : $ *` and `_ # , ( = % ~ > |`).
 */
import { Socket } from 'node:net';

export type Reply =
  | null
  | number
  | bigint
  | boolean
  | string
  | { simple: string }
  | { error: string }
  | { double: string }
  | { verbatim: string }
  | { map: [Reply, Reply][] }
  | { set: Reply[] }
  | { push: Reply[] }
  | Reply[];

export interface Parsed {
  value: Reply;
  /** The reply's exact bytes, latin1-decoded (so any byte survives). */
  raw: string;
}

/** Parses one reply at `at`; undefined if incomplete. */
export function parseReply(buf: Buffer, at = 0): { value: Reply; end: number } | undefined {
  const eol = buf.indexOf('\r\n', at);
  if (eol < 0) return undefined;
  const type = String.fromCharCode(buf[at]!);
  const line = buf.toString('latin1', at + 1, eol);
  const next = eol + 2;
  const many = (n: number): { items: Reply[]; end: number } | undefined => {
    const items: Reply[] = [];
    let p = next;
    for (let i = 0; i < n; i++) {
      const r = parseReply(buf, p);
      if (r === undefined) return undefined;
      items.push(r.value);
      p = r.end;
    }
    return { items, end: p };
  };
  switch (type) {
    case '+':
      return { value: { simple: line }, end: next };
    case '-':
      return { value: { error: line }, end: next };
    case ':': {
      const n = BigInt(line);
      return { value: n >= -(2n ** 53n) && n <= 2n ** 53n ? Number(n) : n, end: next };
    }
    case '(':
      return { value: BigInt(line), end: next };
    case ',':
      return { value: { double: line }, end: next };
    case '#':
      return { value: line === 't', end: next };
    case '_':
      return { value: null, end: next };
    case '$':
    case '=': {
      const n = Number(line);
      if (n < 0) return { value: null, end: next };
      if (buf.length < next + n + 2) return undefined;
      const s = buf.toString('utf8', next, next + n);
      return { value: type === '=' ? { verbatim: s } : s, end: next + n + 2 };
    }
    case '*':
    case '~':
    case '>': {
      const n = Number(line);
      if (n < 0) return { value: null, end: next };
      const r = many(n);
      if (r === undefined) return undefined;
      const value = type === '~' ? { set: r.items } : type === '>' ? { push: r.items } : r.items;
      return { value, end: r.end };
    }
    case '%':
    case '|': {
      const n = Number(line);
      const r = many(2 * n);
      if (r === undefined) return undefined;
      const pairs: [Reply, Reply][] = [];
      for (let i = 0; i < r.items.length; i += 2) pairs.push([r.items[i]!, r.items[i + 1]!]);
      if (type === '|') {
        // An attribute precedes the real reply.
        const real = parseReply(buf, r.end);
        return real;
      }
      return { value: { map: pairs }, end: r.end };
    }
    default:
      throw new Error(`not a RESP reply: ${JSON.stringify(buf.toString('latin1', at, at + 40))}`);
  }
}

/** A RESP command as a multibulk request. */
export function encodeCommand(args: readonly (string | Buffer | number)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = Buffer.isBuffer(a) ? a : Buffer.from(String(a));
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

export class RawResp {
  private buf: Buffer = Buffer.alloc(0);
  /** Every byte received, latin1-decoded. */
  received = '';
  /** Set when the server sent something that is not RESP. */
  parseError: Error | undefined;
  private waiting: ((r: Parsed | Error) => void)[] = [];
  private ready: Parsed[] = [];
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.received += d.toString('latin1');
      this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
      try {
        this.drain();
      } catch (e) {
        this.parseError = e as Error;
        this.buf = Buffer.alloc(0);
      }
    });
    socket.on('close', () => {
      this.closed = true;
      for (const w of this.waiting.splice(0)) w(new Error('connection closed'));
    });
    socket.on('error', () => {});
  }

  static connect(port: number): Promise<RawResp> {
    return new Promise((resolve, reject) => {
      const s = new Socket();
      s.once('error', reject);
      s.connect(port, '127.0.0.1', () => {
        s.off('error', reject);
        resolve(new RawResp(s));
      });
    });
  }

  private drain(): void {
    for (;;) {
      const r = parseReply(this.buf);
      if (r === undefined) return;
      const parsed = { value: r.value, raw: this.buf.toString('latin1', 0, r.end) };
      this.buf = this.buf.subarray(r.end);
      const w = this.waiting.shift();
      if (w) w(parsed);
      else this.ready.push(parsed);
    }
  }

  send(bytes: Buffer | string): void {
    this.socket.write(bytes);
  }

  /** The next reply (waits up to `timeoutMs`). */
  read(timeoutMs = 10_000): Promise<Parsed> {
    const r = this.ready.shift();
    if (r) return Promise.resolve(r);
    if (this.closed) return Promise.reject(new Error('connection closed'));
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no reply in time')), timeoutMs);
      this.waiting.push((x) => {
        clearTimeout(t);
        if (x instanceof Error) reject(x);
        else resolve(x);
      });
    });
  }

  async call(...args: (string | Buffer | number)[]): Promise<Parsed> {
    this.send(encodeCommand(args));
    return this.read();
  }

  /** Resolves when the server has closed the connection. */
  waitClosed(timeoutMs = 5000): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('connection still open')), timeoutMs);
      this.socket.once('close', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  close(): void {
    this.socket.destroy();
  }
}
