/**
 * One Buffer's ArrayBuffer and byte offset, kept so that views of it are
 * made without asking the Buffer again: in Node 20's V8 a Buffer's `.buffer`
 * getter (which `subarray`, `Buffer.copy` and `b.buffer` itself read) is a
 * C++ call with an inline-cache miss, ~500 instructions, about as costly as
 * the rest of a small request's parse; on the request path it ran 7 times a
 * request (coord report setint2.md). Views are made as
 * `Buffer.from(memory, offset + start, length)` or `new Uint8Array(...)`
 * from what is kept instead.
 *
 * Used for: the head being read (ChunkQueue.headView), the output buffer a
 * reply piece is cut from or taken as a place (OutputBuffer), the source of
 * a GET value copied into a reply and the reply's memory (FrameWriter.replyBin,
 * copied memory to memory: `keep`, then keptMemory and keptOffset), and the
 * view of the shared read buffer being delivered (socket-reads.ts,
 * `remember`: its memory is known without the getter at all).
 *
 * Invariants: at most one Buffer is kept, and it is held strongly until the
 * next one or `forget()`; the owner forgets it when it must not keep the
 * memory alive. Everything runs on the event loop.
 */

export class KeptMemory {
  /** The Buffer whose memory is kept, or undefined. */
  private held: Uint8Array | undefined = undefined;
  /** held.buffer and held.byteOffset (undefined, not a placeholder, while nothing is held: a store with no write barrier). */
  private memory: ArrayBufferLike | undefined = undefined;
  private offset = 0;

  /** Keeps `b` and its memory, given by the caller that made `b` over `memory` at `offset` (no getter read). */
  remember(b: Uint8Array, memory: ArrayBufferLike, offset: number): void {
    this.held = b;
    this.memory = memory;
    this.offset = offset;
  }

  /** Keeps nothing: the last Buffer and its memory are no longer referenced from here. */
  forget(): void {
    this.held = undefined;
    this.memory = undefined;
  }

  /** Keeps `b` if it is not the Buffer kept: keptMemory and keptOffset are then its ArrayBuffer and byte offset. */
  keep(b: Uint8Array): void {
    if (b !== this.held) this.remember(b, b.buffer, b.byteOffset);
  }

  /** The kept Buffer's ArrayBuffer (something is kept: after keep or remember). */
  get keptMemory(): ArrayBufferLike {
    return this.memory!;
  }

  /** The kept Buffer's byte offset in keptMemory. */
  get keptOffset(): number {
    return this.offset;
  }

  /** True if `b` is the Buffer kept. */
  holds(b: Uint8Array): boolean {
    return b === this.held;
  }

  /** `b.buffer`: the kept one if `b` is the Buffer kept, else the getter's (and nothing more is kept). */
  memoryOf(b: Uint8Array): ArrayBufferLike {
    return b === this.held ? this.memory! : b.buffer;
  }

  /** b[start, end) as a Buffer, what `b.subarray(start, end)` gives; `b` is kept from now on. */
  subarray(b: Uint8Array, start: number, end: number): Buffer {
    if (b !== this.held) this.remember(b, b.buffer, b.byteOffset);
    return Buffer.from(this.memory!, this.offset + start, end - start);
  }
}
