/**
 * A minimal native-protocol client for the cluster tests: sends one request
 * at a time and returns the reply as `{ ok, value }` or `{ error: {code,
 * message} }`, so tests see MOVED, CROSSSLOT and READONLY exactly as a
 * client in another language would.
 */
import { connect, type Socket } from 'node:net';
import { encodeFrame, FrameReader, unpackr } from '../../src/protocol/frame.js';

export type Reply = { ok: true; value: unknown } | { ok: false; code: string; message: string };

export class WireClient {
  private readonly reader = new FrameReader(64 * 1024 * 1024);
  private readonly waiting = new Map<number, (r: Reply) => void>();
  private nextId = 1;
  private closedWith: Error | undefined;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.reader.push(chunk);
      for (let body = this.reader.next(); body !== undefined; body = this.reader.next()) {
        const [id, value, error] = unpackr.unpack(body) as [
          number,
          unknown,
          { code: string; message: string }?,
        ];
        const done = this.waiting.get(id);
        this.waiting.delete(id);
        done?.(error ? { ok: false, code: error.code, message: error.message } : { ok: true, value });
      }
    });
    const fail = (err: Error) => {
      this.closedWith = err;
      for (const done of this.waiting.values())
        done({ ok: false, code: 'CONNECTION_CLOSED', message: err.message });
      this.waiting.clear();
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('closed')));
  }

  static open(port: number): Promise<WireClient> {
    return new Promise((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port }, () => {
        s.off('error', reject);
        resolve(new WireClient(s));
      });
      s.once('error', reject);
    });
  }

  /** Sends a request; resolves with its reply (or CONNECTION_CLOSED). */
  call(command: string, ...args: unknown[]): Promise<Reply> {
    if (this.closedWith) return Promise.resolve({ ok: false, code: 'CONNECTION_CLOSED', message: 'closed' });
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.socket.write(encodeFrame([id, command, ...args]));
    });
  }

  close(): void {
    this.socket.destroy();
  }
}
