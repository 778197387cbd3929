/**
 * The received bytes of one connection, as the request readers see them: the
 * native FrameReader (frame.ts) and the RESP RespReader (src/resp/parser.ts)
 * both read from `head` at `offset` and call `merge()` when what they need
 * runs past its end.
 *
 * Invariants:
 * - A chunk pushed while nothing is buffered becomes `head` itself (a request
 *   inside it is read as views, no copy); later chunks wait in the tail, and
 *   `merge()` copies the unread part of head and the whole tail into one
 *   buffer, once, when a reader needs bytes beyond head — so a request split
 *   over many chunks costs O(N), not O(N²).
 * - A chunk may be a view of memory its sender reuses (the server's shared
 *   read buffer, server/socket-reads.ts): before that memory is reused,
 *   `keep(memory)` copies the unread bytes held in views of it, and only
 *   those (bytes already copied are not copied again, so a large request
 *   arriving over many reads still costs O(N)).
 */

import { KeptMemory } from './kept-memory.js';

const EMPTY = Buffer.alloc(0);

export class ChunkQueue {
  /** The buffer being read and the read position in it. */
  protected head: Buffer = EMPTY;
  protected offset = 0;
  /** Chunks received after `head`, not yet merged into it. */
  private tail: Buffer[] = [];
  protected tailBytes = 0;

  /** head's ArrayBuffer, read once per head for headView; forgotten whenever head changes, so it holds nothing the queue does not. */
  private readonly headMemory = new KeptMemory();

  /** Reads `b` from its start next. */
  private setHead(b: Buffer): void {
    this.head = b;
    this.offset = 0;
    this.headMemory.forget();
  }

  /** head[start, end) as a Buffer: what head.subarray gives, without its `.buffer` read per call (kept-memory.ts). */
  protected headView(start: number, end: number): Buffer {
    return this.headMemory.subarray(this.head, start, end);
  }

  /** Bytes received and not yet returned in requests. */
  get buffered(): number {
    return this.head.length - this.offset + this.tailBytes;
  }

  /** True while part of a request has arrived and the rest has not. */
  get partial(): boolean {
    return this.buffered > 0;
  }

  push(chunk: Buffer): void {
    if (this.offset >= this.head.length && this.tailBytes === 0) {
      this.setHead(chunk);
    } else {
      this.tail.push(chunk);
      this.tailBytes += chunk.length;
    }
  }

  /**
   * Copies the unread bytes held in views of `memory` (about to be reused)
   * into buffers of their own; the read position's meaning is unchanged.
   */
  keep(memory: ArrayBufferLike): void {
    if (this.offset >= this.head.length && this.tailBytes === 0) {
      // All read (the usual case): nothing to copy, and no `.buffer` to read (a C++ call).
      this.setHead(EMPTY);
      return;
    }
    if (this.head.buffer === memory) {
      this.setHead(this.offset < this.head.length ? Buffer.from(this.head.subarray(this.offset)) : EMPTY);
    }
    const tail = this.tail;
    for (let i = 0; i < tail.length; i++) if (tail[i]!.buffer === memory) tail[i] = Buffer.from(tail[i]!);
  }

  /** Copies the unread part of head and every tail chunk into one buffer (head read to its end, no tail: head empties). */
  protected merge(): void {
    if (this.tailBytes === 0) {
      if (this.offset >= this.head.length) {
        this.setHead(EMPTY);
      }
      return;
    }
    const parts = [this.head.subarray(this.offset), ...this.tail];
    this.setHead(Buffer.concat(parts, this.head.length - this.offset + this.tailBytes));
    this.tail = [];
    this.tailBytes = 0;
  }
}
