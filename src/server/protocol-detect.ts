/**
 * One port, two protocols: a connection's first byte says which it speaks.
 * A native frame starts with the high byte of its uint32 length, 0x00-0x03
 * for any frame up to the default 64 MiB limit. A RESP request starts with
 * `*` (multibulk, what every Redis client sends) or, for an inline command
 * (telnet), with any text: a letter, a quote, a blank. So printable ASCII
 * (0x20-0x7e) and TAB, LF, CR select RESP; any other byte (0x00-0x08, the
 * other control bytes, 0x7f-0xff) the native protocol. A native client's
 * first frame would have to be at least 144 MiB (0x09000000), with
 * --max-frame-bytes raised that far, to be mistaken (PROTOCOL.md §12).
 *
 * Until its first bytes arrive a connection is a PendingConnection: counted
 * against --max-clients, closed by shutdown and by the idle timeout (as a
 * native connection: a fatal TIMEOUT frame), and replaced by the real
 * connection, which is handed those first bytes.
 */
import type { Socket } from 'node:net';
import { RespConnection, type RespHost } from '../resp/connection.js';
import { Connection } from './connection.js';
import type { ServedConnection } from './served-connection.js';
import { setSink } from './socket-reads.js';

/** A detached pending connection's sink: its successor installs its own at once. */
const ignore = (): void => {};

/** True if a connection whose first byte is `b` speaks RESP. */
export function isRespStart(b: number): boolean {
  return (b >= 0x20 && b <= 0x7e) || b === 0x09 || b === 0x0a || b === 0x0d;
}

/** After the server ends a pending connection, the peer has this long to close. */
const LINGER_MS = 2000;

export class PendingConnection implements ServedConnection {
  readonly id = 0;
  readonly remote: string;
  private closed = false;
  private settled = false;
  private readonly onError = () => {};
  private readonly onEnd = () => this.shutdown();
  private readonly onClose = () => {
    this.closed = true;
    this.host.forget(this);
  };
  private readonly onData = (chunk: Buffer) => this.settle(chunk);

  /** @param adopt called with the real connection once the protocol is known */
  constructor(
    readonly socket: Socket,
    private readonly host: RespHost,
    private readonly adopt: (conn: ServedConnection) => void,
  ) {
    this.remote = `${socket.remoteAddress}:${socket.remotePort}`;
    socket.on('error', this.onError);
    socket.on('end', this.onEnd);
    socket.on('close', this.onClose);
    setSink(socket, this.onData);
  }

  private detach(): void {
    this.settled = true;
    setSink(this.socket, ignore);
    this.socket.off('error', this.onError);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onClose);
  }

  private settle(first: Buffer): void {
    this.detach();
    this.host.forget(this);
    const conn = isRespStart(first[0]!)
      ? new RespConnection(this.socket, this.host, first)
      : new Connection(this.socket, this.host, first);
    this.adopt(conn);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  flush(): void {}

  checkFrameDeadline(): void {}

  shutdown(): void {
    if (this.closed || this.settled) return;
    this.socket.end();
    setTimeout(() => this.socket.destroy(), LINGER_MS).unref();
  }

  /** Idle before saying anything: answered as the native protocol answers an idle connection. */
  idle(ms: number): void {
    if (this.closed || this.settled) return;
    this.detach();
    this.host.forget(this);
    const conn = new Connection(this.socket, this.host);
    this.adopt(conn);
    conn.idle(ms);
  }
}
