/**
 * A raw TCP client for talking to kv-server byte by byte, without the SDK:
 * tools/hostile.ts sends hostile input with it, and the server tests
 * (test/server/spawn.ts) check replies byte for byte. It collects every byte
 * received and finds frames (uint32 big-endian length + body) in them.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { Unpackr } from 'msgpackr';

const unpackr = new Unpackr({ useRecords: false, int64AsType: 'number' });

/**
 * A frame of `body` whose length prefix says `length` (default: the body's
 * length). Unlike encodeFrame (src/protocol/frame.ts) the prefix may lie, to
 * send wrong, zero or oversized lengths.
 */
export function rawFrame(body: Uint8Array, length = body.length): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(length >>> 0);
  return Buffer.concat([head, body]);
}

/** A raw TCP connection that collects every byte received. */
export class RawConnection {
  readonly socket: Socket;
  received: Buffer = Buffer.alloc(0);
  closed = false;
  private waiters: (() => void)[] = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (b: Buffer) => {
      this.received = this.received.length === 0 ? b : Buffer.concat([this.received, b]);
      this.wake();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  /** Connects to 127.0.0.1:`port`; with `timeoutMs`, gives up (rejects) after that long. */
  static open(port: number, timeoutMs?: number): Promise<RawConnection> {
    return new Promise((res, rej) => {
      const s = netConnect({ host: '127.0.0.1', port });
      const t =
        timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              s.destroy();
              rej(new Error('connect timeout'));
            }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(t);
        res(new RawConnection(s));
      });
      s.once('error', (e) => {
        clearTimeout(t);
        rej(e);
      });
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Waits until `pred()` holds or the timeout passes; returns whether it held. */
  async until(pred: () => boolean, timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    return true;
  }

  /** Whether a whole frame has arrived. */
  private hasFrame(): boolean {
    return this.received.length >= 4 && this.received.length >= 4 + this.received.readUInt32BE(0);
  }

  /** Takes exactly `n` bytes once they have arrived (or what arrived by the timeout). */
  async take(n: number, timeoutMs = 5000): Promise<Buffer> {
    await this.until(() => this.received.length >= n || this.closed, timeoutMs);
    const out = this.received.subarray(0, n);
    this.received = this.received.subarray(out.length);
    return out;
  }

  /** Takes one whole frame (length prefix included). */
  async frame(timeoutMs = 5000): Promise<Buffer | undefined> {
    const ok = await this.until(() => this.hasFrame(), timeoutMs);
    if (!ok) return undefined;
    return this.take(4 + this.received.readUInt32BE(0));
  }

  /** Next whole frame's decoded body, 'closed', 'timeout', or 'garbage' (not a frame). */
  async next(timeoutMs = 2000): Promise<unknown[] | 'closed' | 'timeout' | 'garbage'> {
    const ok = await this.until(() => this.hasFrame() || this.closed, timeoutMs);
    if (!this.hasFrame()) return ok ? 'closed' : 'timeout';
    const n = this.received.readUInt32BE(0);
    const body = this.received.subarray(4, 4 + n);
    this.received = this.received.subarray(4 + n);
    try {
      const v = unpackr.unpack(body) as unknown;
      return Array.isArray(v) ? v : 'garbage';
    } catch {
      return 'garbage';
    }
  }

  /** Writes `b` unless the connection has closed. */
  write(b: Uint8Array): void {
    if (!this.closed) this.socket.write(b);
  }

  close(): void {
    this.socket.destroy();
  }
}
