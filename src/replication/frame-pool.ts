/**
 * Reused buffers for a raw feed's frames on the primary (FeedStream): a
 * frame of FEED_BATCH_BYTES is otherwise a fresh allocation per batch — on
 * glibc a fresh mmap whose every page faults on first touch, and which goes
 * back to the OS only when the GC collects the frame; a full resync of a
 * mostly idle primary sends its whole log so, and its RSS grew by about the
 * bytes sent (+13% at 200k keys, bench:replication) until a GC came.
 *
 * Invariants:
 * - Frames are counted in bytes sent, in order: `take` notes where its
 *   frame ends in that count. A buffer is in flight until `reclaim(done)`
 *   with `done` at or past that end, and is never handed out again before,
 *   so a frame still queued in the connection or the socket is never
 *   overwritten.
 * - The caller passes as `done` a lower bound of the feed's bytes the
 *   kernel has taken: bytes sent − the connection's unsent bytes, valid
 *   while no reply is awaited (StreamSink.holdsFrames), as frames behind
 *   an awaited reply are not counted as unsent.
 * - Buffers bigger than FEED_FRAME_BUFFER_BYTES (a frame of one large record)
 *   are allocated for that frame and never kept; at most FEED_FRAME_BUFFERS
 *   are kept free, so the pool's memory is bounded whatever the feed does.
 *
 * Single-threaded (the event loop).
 */
import { FEED_FRAME_BUFFER_BYTES, FEED_FRAME_BUFFERS } from '../protocol/limits.js';

export class FramePool {
  private free: Buffer[] = [];
  /** Buffers in flight, oldest first, and where each one's frame ends in the bytes sent. */
  private inFlight: Buffer[] = [];
  private inFlightEnds: number[] = [];
  /** Bytes of every frame taken so far (the count `reclaim`'s `done` is in). */
  sent = 0;
  /** Buffers allocated for the pool so far (tests check reuse with it). */
  allocated = 0;

  constructor(
    private readonly bufferBytes = FEED_FRAME_BUFFER_BYTES,
    private readonly maxFree = FEED_FRAME_BUFFERS,
  ) {}

  /**
   * A frame of `bytes` bytes to be sent next: a view of a pooled buffer when
   * it fits (in flight until `reclaim` passes its end), else a buffer of its own.
   */
  take(bytes: number): Buffer {
    this.sent += bytes;
    if (bytes > this.bufferBytes) return Buffer.allocUnsafe(bytes);
    let buf = this.free.pop();
    if (buf === undefined) {
      buf = Buffer.allocUnsafe(this.bufferBytes);
      this.allocated++;
    }
    this.inFlight.push(buf);
    this.inFlightEnds.push(this.sent);
    return buf.subarray(0, bytes);
  }

  /** The kernel has taken at least the first `done` bytes sent: buffers of frames ending there may be reused. */
  reclaim(done: number): void {
    let k = 0;
    while (k < this.inFlight.length && this.inFlightEnds[k]! <= done) {
      if (this.free.length < this.maxFree) this.free.push(this.inFlight[k]!);
      k++;
    }
    if (k > 0) {
      this.inFlight.splice(0, k);
      this.inFlightEnds.splice(0, k);
    }
  }
}
