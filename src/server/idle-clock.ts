/**
 * The idle clock of one client socket (PROTOCOL.md §5, `--idle-timeout-ms`):
 * how long no byte has moved in either direction. Read from the socket
 * itself, so it serves every protocol on the port (native, RESP, not yet
 * detected) without hooks in their code:
 *
 * - inbound traffic: `bytesRead` grew;
 * - outbound traffic: `bytesWritten` grew (a write issued) or the write queue
 *   of the socket handle shrank (libuv handed queued reply bytes to the
 *   kernel: a slow reader taking a large reply is progress, not idleness);
 * - a reply in flight (`writableLength > 0`: written by the server, not yet
 *   wholly handed to the kernel) keeps the clock at zero however slowly it
 *   drains.
 *
 * Requests in progress inside the connection (a write awaiting its fsync)
 * are the connection's to judge: the server calls its `idle()` once the clock
 * passes the timeout, and it declines while it owes a reply.
 */
import type { Socket } from 'node:net';

/** Node's stream handle keeps the bytes libuv has not written yet here (what net.Socket's own timeout reads). */
interface WithWriteQueue {
  _handle?: { writeQueueSize?: number } | null;
}

export class IdleClock {
  private read: number;
  private written: number;
  private queued: number;
  private since: number;

  constructor(private readonly socket: Socket) {
    this.read = socket.bytesRead;
    this.written = socket.bytesWritten ?? 0;
    this.queued = 0;
    this.since = Date.now();
  }

  /** Ms since the last traffic, as of `now`; 0 while a reply is in flight. */
  idleFor(now: number): number {
    const s = this.socket;
    const read = s.bytesRead;
    const written = s.bytesWritten ?? 0;
    const queued = (s as unknown as WithWriteQueue)._handle?.writeQueueSize ?? 0;
    if (read !== this.read || written !== this.written || queued !== this.queued || s.writableLength > 0) {
      this.read = read;
      this.written = written;
      this.queued = queued;
      this.since = now;
    }
    return now - this.since;
  }
}
