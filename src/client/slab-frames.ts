/**
 * A frame reader for a raw feed's reader (a replica): frames (protocol/frame.ts)
 * are assembled by copying the socket's bytes straight into reused slabs of
 * FEED_SLAB_BYTES, frame after frame, instead of into a fresh Buffer per
 * frame (FrameReader's concat of the chunks). A fresh buffer of a few
 * hundred KiB is a fresh mmap on glibc: every page of it faults on first
 * touch, ~2 ms per 256 KiB frame on this VM against ~12 µs for the same
 * copy into a buffer already touched, and the pages go back to the OS only
 * when the GC collects the frame.
 *
 * Invariants:
 * - A body handed to `onFrame` is a view of a slab (or, for a frame larger
 *   than a slab, of a Buffer of its own). It stays intact while `onFrame`
 *   runs; after that, only if `hold()` was called in `onFrame`, and until
 *   the matching `release`. Bytes of a frame not held may be overwritten as
 *   soon as its slab is retired (full) and every held frame in it released.
 * - A slab is written only at and past its fill position, which only grows
 *   while a frame in the slab is held (with none held, the next frame starts
 *   it over); a retired slab is rewritten only after it is back on the free
 *   list, i.e. when no frame in it is held. So a held frame is never
 *   overwritten, whatever arrives after it.
 * - The length prefix is checked against `maxFrameBytes` before any byte of
 *   its body is buffered (DESIGN.md §5), as FrameReader does.
 * - At most FEED_FREE_SLABS slabs are kept for reuse; the rest are left to
 *   the GC, so a burst does not pin its peak.
 *
 * Single-threaded (the event loop); no I/O.
 */
import { checkFrameLength } from '../protocol/frame.js';
import { FEED_FREE_SLABS, FEED_SLAB_BYTES, FRAME_HEADER_BYTES } from '../protocol/limits.js';

/** A reused buffer holding consecutive frames; `users` counts the frames in it that are held. */
export interface Slab {
  readonly buf: Buffer;
  users: number;
}

export class SlabFrameReader {
  /** The slab frames are written into now, and where the next frame starts in it. */
  private slab: Slab | undefined;
  private fill = 0;
  private readonly free: Slab[] = [];
  /** The length prefix read so far (it may be cut by a chunk boundary). */
  private readonly prefix = Buffer.alloc(FRAME_HEADER_BYTES);
  private prefixFill = 0;
  /** The body being assembled: dest[at, at + length), `got` bytes of it so far; undefined between frames. */
  private dest: Buffer | undefined;
  private destSlab: Slab | undefined;
  private at = 0;
  private length = 0;
  private got = 0;
  /** The slab of the body last handed to onFrame (for hold), undefined if it had a buffer of its own. */
  private lastSlab: Slab | undefined;
  /** Slabs allocated so far (tests check reuse with it). */
  allocated = 0;

  /** @param maxFrameBytes largest body accepted; may be changed between frames */
  constructor(
    public maxFrameBytes: number,
    private readonly onFrame: (body: Buffer) => void,
    private readonly slabBytes = FEED_SLAB_BYTES,
    private readonly maxFree = FEED_FREE_SLABS,
  ) {}

  /** Bytes of a frame received and not yet handed out. */
  get partial(): boolean {
    return this.prefixFill > 0 || this.dest !== undefined;
  }

  /**
   * Copies src[start, end) in, calling onFrame for every frame it completes
   * (src may be reused by the caller as soon as this returns). Throws
   * FrameError on a length prefix of 0 or over the limit.
   */
  push(src: Buffer, start = 0, end = src.length): void {
    let s = start;
    while (s < end) {
      if (this.dest === undefined) {
        const n = Math.min(FRAME_HEADER_BYTES - this.prefixFill, end - s);
        src.copy(this.prefix, this.prefixFill, s, s + n);
        this.prefixFill += n;
        s += n;
        if (this.prefixFill < FRAME_HEADER_BYTES) return;
        this.prefixFill = 0;
        this.begin(this.prefix.readUInt32BE(0));
        continue;
      }
      const n = Math.min(this.length - this.got, end - s);
      src.copy(this.dest, this.at + this.got, s, s + n);
      this.got += n;
      s += n;
      if (this.got === this.length) this.complete();
    }
  }

  /** Keeps the body just handed to onFrame intact until `release` of what this returns (call inside onFrame). */
  hold(): Slab | undefined {
    const slab = this.lastSlab;
    if (slab !== undefined) slab.users++;
    return slab;
  }

  /** Ends one hold of `slab` (hold's result); a retired slab with no frame held goes back for reuse. */
  release(slab: Slab | undefined): void {
    if (slab === undefined) return;
    slab.users--;
    if (slab.users === 0 && slab !== this.slab) this.recycle(slab);
  }

  /** A body of `length` bytes starts: place it in the current slab, the next one, or a buffer of its own. */
  private begin(length: number): void {
    checkFrameLength(length, this.maxFrameBytes);
    this.length = length;
    this.got = 0;
    if (length > this.slabBytes) {
      this.dest = Buffer.allocUnsafe(length);
      this.destSlab = undefined;
      this.at = 0;
      return;
    }
    // No frame of the current slab is held: start it over (a reader that releases promptly keeps to one slab).
    if (this.slab !== undefined && this.slab.users === 0) this.fill = 0;
    if (this.slab === undefined || this.slab.buf.length - this.fill < length) {
      const old = this.slab;
      this.slab = this.free.pop() ?? this.newSlab();
      this.fill = 0;
      if (old !== undefined && old.users === 0) this.recycle(old);
    }
    this.dest = this.slab.buf;
    this.destSlab = this.slab;
    this.at = this.fill;
    this.fill += length;
  }

  private complete(): void {
    const body = this.dest!.subarray(this.at, this.at + this.length);
    this.lastSlab = this.destSlab;
    this.dest = undefined;
    this.destSlab = undefined;
    try {
      this.onFrame(body);
    } finally {
      this.lastSlab = undefined;
    }
  }

  private newSlab(): Slab {
    this.allocated++;
    return { buf: Buffer.allocUnsafe(this.slabBytes), users: 0 };
  }

  private recycle(slab: Slab): void {
    if (this.free.length < this.maxFree) this.free.push(slab);
  }
}
