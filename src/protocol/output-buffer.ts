/**
 * One growing output buffer that replies (or requests) are encoded straight
 * into, shared by the native frame writer (frame-writer.ts) and the RESP
 * reply writer (src/resp/writer.ts): each subclass writes its format with
 * `reserve`, `byte` and `bytes`, and `take()` hands back what was written
 * since the last take.
 *
 * Invariants: bytes are appended in order; `take()` returns every byte
 * written since the last take as few buffers as possible (one, unless a
 * value of at least ZERO_COPY_BYTES was referenced instead of copied, or the
 * buffer had to grow); buffers handed out are never written again (writing
 * resumes after them, or in a fresh buffer).
 */

import { KeptMemory } from './kept-memory.js';

/** Values at least this large are referenced, not copied, into the output. */
export const ZERO_COPY_BYTES = 64 * 1024;

/** Size of a fresh output buffer. */
const CHUNK_BYTES = 64 * 1024;

/** After a take, a buffer with less room than this left is replaced by a fresh one. */
const MIN_ROOM_BYTES = 1024;

export class OutputBuffer {
  protected buf: Buffer = Buffer.allocUnsafe(CHUNK_BYTES);
  protected pos = 0;
  /** Start of the bytes of `buf` not yet handed out or moved to `done`. */
  protected start = 0;
  /** `buf`'s ArrayBuffer, read once per buffer for the pieces cut from it (kept-memory.ts). */
  protected readonly bufMemory = new KeptMemory();
  /** Finished pieces, in order, before buf[start, pos). */
  protected done: Buffer[] = [];
  protected doneBytes = 0;

  /** Bytes written and not yet taken. */
  get length(): number {
    return this.doneBytes + this.pos - this.start;
  }

  /** Everything written since the last take. */
  take(): Buffer[] {
    this.seal();
    const out = this.done;
    this.done = [];
    this.doneBytes = 0;
    return out;
  }

  /** Where the piece the last takeOneAt() took lies: takenMemory[takenStart, takenStart + its length). */
  takenMemory: ArrayBufferLike | undefined = undefined;
  takenStart = 0;

  /**
   * take() when everything written since the last take is one piece of
   * `buf` (a server's reply at pipeline 1, a run of small replies), with no
   * array and no Buffer made for it: its length, the piece lying at
   * takenMemory[takenStart, takenStart + length), never written again. 0,
   * taking nothing, when nothing was written or it is in more than one
   * piece: take() then. A server connection keeps the piece as these numbers
   * and copies it out when it writes (a view made per reply was the largest
   * allocation per request at pipeline 1).
   */
  takeOneAt(): number {
    if (this.done.length > 0 || this.pos === this.start) return 0;
    const kept = this.bufMemory;
    kept.keep(this.buf);
    this.takenMemory = kept.keptMemory;
    this.takenStart = kept.keptOffset + this.start;
    const n = this.pos - this.start;
    this.startFresh();
    return n;
  }

  /** buf[start, pos) as a Buffer: what `buf.subarray` gives, without its `.buffer` read per call. */
  private piece(): Buffer {
    return this.bufMemory.subarray(this.buf, this.start, this.pos);
  }

  /** Moves buf[start, pos) to `done` and starts writing into a fresh region. */
  protected seal(): void {
    if (this.pos > this.start) {
      this.done.push(this.piece());
      this.doneBytes += this.pos - this.start;
    }
    this.startFresh();
  }

  /** The next bytes go after those taken: in a fresh buffer when this one has too little room left. */
  private startFresh(): void {
    if (this.buf.length - this.pos < MIN_ROOM_BYTES) {
      this.buf = Buffer.allocUnsafe(CHUNK_BYTES);
      this.pos = 0;
    }
    this.start = this.pos;
  }

  /** Makes room for `n` contiguous bytes; returns the position they start at. */
  protected reserve(n: number): number {
    if (this.buf.length - this.pos >= n) return this.pos;
    if (this.pos > this.start) {
      this.done.push(this.buf.subarray(this.start, this.pos));
      this.doneBytes += this.pos - this.start;
    }
    this.buf = Buffer.allocUnsafe(Math.max(CHUNK_BYTES, n));
    this.pos = 0;
    this.start = 0;
    return 0;
  }

  /** Appends `b`: copied, or referenced when it is at least ZERO_COPY_BYTES. */
  protected bytes(b: Uint8Array): undefined {
    if (b.length >= ZERO_COPY_BYTES) {
      this.seal();
      this.done.push(Buffer.from(b.buffer, b.byteOffset, b.length));
      this.doneBytes += b.length;
      return;
    }
    const at = this.reserve(b.length);
    this.buf.set(b, at);
    this.pos = at + b.length;
  }

  protected byte(x: number): undefined {
    const at = this.reserve(1);
    this.buf[at] = x;
    this.pos = at + 1;
  }
}
