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
 * buffer had to grow); bytes handed out are never written again while
 * anyone may read them: writing resumes after them, or in another buffer;
 * a buffer is written from its start again (`rewind`, at the end of a
 * server tick) only once every place lent from it (`takeOneAt`) was given
 * back (`giveBack`: copied out) and none of it was handed out as a Buffer
 * (`take`, or a place made a Buffer: `pin`). A buffer left full while
 * places lent from it are still out waits in `left` until they come back,
 * then is reused whole (`spare`).
 *
 * Why rewind: the server's shared writers take each tick's replies as places
 * that the socket writes copy out at once. Without it every 64 KiB of
 * replies was a fresh buffer, and V8 counts each as external memory: at
 * ~600k GETs/s that was ~70 MB/s, and V8 answered that pressure with a full
 * mark-compact about every second (3-8 ms pauses) on a heap of 10 MB.
 */

import { KeptMemory } from './kept-memory.js';

/** Values at least this large are referenced, not copied, into the output. */
export const ZERO_COPY_BYTES = 64 * 1024;

/** Size of a fresh output buffer. */
const CHUNK_BYTES = 64 * 1024;

/** After a take, a buffer with less room than this left is replaced by a fresh one. */
const MIN_ROOM_BYTES = 1024;

/** Buffers left with places still lent, and whole buffers kept for reuse: at most this many each. */
const LEFT_KEPT = 8;
const SPARE_KEPT = 4;

/** A buffer left while places lent from it were out: `lent` bytes of them not given back yet. */
interface Left {
  buf: Buffer;
  memory: ArrayBufferLike;
  lent: number;
}

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
  /** Bytes of `buf` lent as places (takeOneAt) and not given back. */
  private lent = 0;
  /** `buf`'s memory, once a place was lent from it (what giveBack and pin compare with). */
  private lentMemory: ArrayBufferLike | undefined = undefined;
  /** Some of `buf` was handed out as a Buffer, which may be read at any time: it is never rewound. */
  private pinned = false;
  /** Buffers made, the first included (tests: a server's steady load makes none). */
  buffersMade = 1;
  private readonly left: Left[] = [];
  private readonly spare: Buffer[] = [];

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
    this.lentMemory = kept.keptMemory;
    this.lent += n;
    this.startFresh();
    return n;
  }

  /** `n` bytes of a place lent from `memory` were copied out: no one reads them there again. */
  giveBack(memory: ArrayBufferLike, n: number): void {
    if (memory === this.lentMemory) {
      this.lent -= n;
      return;
    }
    for (const l of this.left) {
      if (l.memory === memory) {
        l.lent -= n;
        return;
      }
    }
  }

  /** A place lent from `memory` became a Buffer (it may be read later): that memory is never rewound. */
  pin(memory: ArrayBufferLike): void {
    if (memory === this.lentMemory) {
      this.pinned = true;
      return;
    }
    const i = this.left.findIndex((l) => l.memory === memory);
    if (i >= 0) this.left.splice(i, 1);
  }

  /**
   * Writes the next bytes from the start of this buffer again when nothing
   * of it is lent, pinned or waiting to be taken (see the header): the
   * server calls it at the end of each tick, after every connection wrote
   * what it took. Returns whether it did.
   */
  rewind(): boolean {
    const left = this.left;
    for (let i = left.length - 1; i >= 0; i--) {
      if (left[i]!.lent !== 0) continue;
      const [l] = left.splice(i, 1);
      if (this.spare.length < SPARE_KEPT) this.spare.push(l!.buf);
    }
    if (this.lent !== 0 || this.pinned || this.pos !== this.start || this.done.length > 0) return false;
    this.pos = 0;
    this.start = 0;
    return true;
  }

  /**
   * Moves on from `buf` to a buffer of at least `n` bytes: a spare one, or a
   * new one. `buf` waits in `left` if places lent from it are out (or all
   * came back, for the next rewind to spare it); a pinned one is dropped.
   */
  private moveOn(n: number): void {
    if (!this.pinned && this.lentMemory !== undefined && this.left.length < LEFT_KEPT)
      this.left.push({ buf: this.buf, memory: this.lentMemory, lent: this.lent });
    const spare = n <= CHUNK_BYTES ? this.spare.pop() : undefined;
    if (spare !== undefined) this.buf = spare;
    else {
      this.buf = Buffer.allocUnsafe(Math.max(CHUNK_BYTES, n));
      this.buffersMade++;
    }
    this.lent = 0;
    this.lentMemory = undefined;
    this.pinned = false;
  }

  /**
   * Writes into `buf` again, a buffer moved on from during the frame being
   * rolled back (frame-writer.ts): it is written to again, so it is taken
   * out of `left` (never spared) and pinned (its lent places are not counted
   * any more, so it is never rewound either).
   */
  protected returnTo(buf: Buffer): void {
    if (buf === this.buf) return;
    const i = this.left.findIndex((l) => l.buf === buf);
    if (i >= 0) this.left.splice(i, 1);
    this.buf = buf;
    this.pinned = true;
  }

  /** buf[start, pos) as a Buffer: what `buf.subarray` gives, without its `.buffer` read per call. */
  private piece(): Buffer {
    return this.bufMemory.subarray(this.buf, this.start, this.pos);
  }

  /** Moves buf[start, pos) to `done` and starts writing into a fresh region. */
  protected seal(): void {
    if (this.pos > this.start) {
      this.pinned = true;
      this.done.push(this.piece());
      this.doneBytes += this.pos - this.start;
    }
    this.startFresh();
  }

  /** The next bytes go after those taken: in a fresh buffer when this one has too little room left. */
  private startFresh(): void {
    if (this.buf.length - this.pos < MIN_ROOM_BYTES) {
      this.moveOn(CHUNK_BYTES);
      this.pos = 0;
    }
    this.start = this.pos;
  }

  /** Makes room for `n` contiguous bytes; returns the position they start at. */
  protected reserve(n: number): number {
    if (this.buf.length - this.pos >= n) return this.pos;
    if (this.pos > this.start) {
      this.pinned = true;
      this.done.push(this.buf.subarray(this.start, this.pos));
      this.doneBytes += this.pos - this.start;
    }
    this.moveOn(n);
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
