/**
 * Framing: every message is a uint32 big-endian body length followed by the
 * body, one MessagePack value.
 *
 *   +--------+--------+--------+--------+==========================+
 *   |  body length N (uint32, big-endian) |  N bytes: one MessagePack |
 *   +--------+--------+--------+--------+==========================+
 *
 * Invariants: a length prefix is checked against the limit before any byte
 * of its body is buffered (DESIGN.md §5); a complete frame lying inside one
 * socket chunk is returned as a view of that chunk (no copy); a frame split
 * over chunks is assembled with exactly one copy once all of it has arrived,
 * so a 64 MiB frame in 64 KiB chunks costs O(N), not O(N²).
 *
 * The MessagePack codecs are shared, stateless between calls: no records or
 * structures (a msgpackr extension) survive from one frame to the next.
 */
import { Packr, Unpackr } from 'msgpackr';
import { ChunkQueue } from './chunk-queue.js';
import { FRAME_HEADER_BYTES } from './limits.js';

/** Packs plain MessagePack: maps as maps (minimal size), Buffers as bin, no msgpackr records. */
export const packr = new Packr({ useRecords: false, variableMapSize: true });

/** Unpacks one value per call; 64-bit integers as numbers; bin as views of the source (no copy). */
export const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });

/** Why a frame could not be read: the length prefix is 0 or over the limit. */
export class FrameError extends Error {
  constructor(
    readonly reason: 'empty' | 'too-large',
    readonly length: number,
  ) {
    super(reason === 'empty' ? 'frame of length 0' : `frame of ${length} bytes`);
  }
}

/** Throws the FrameError of a length prefix that is 0 or over `maxFrameBytes`. */
export function checkFrameLength(length: number, maxFrameBytes: number): void {
  if (length === 0) throw new FrameError('empty', 0);
  if (length > maxFrameBytes) throw new FrameError('too-large', length);
}

/** Encodes one value as a frame (length prefix + MessagePack body). */
export function encodeFrame(value: unknown): Buffer {
  const body = packr.pack(value);
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + body.length);
  frame.writeUInt32BE(body.length, 0);
  body.copy(frame, FRAME_HEADER_BYTES);
  return frame;
}

/**
 * Splits a byte stream into frame bodies. Feed chunks with `push`, take
 * bodies with `next` until it returns undefined (need more bytes); the
 * chunks are held by ChunkQueue (chunk-queue.ts).
 */
export class FrameReader extends ChunkQueue {
  /** @param maxFrameBytes largest body accepted; may be changed between frames (e.g. after AUTH). */
  constructor(public maxFrameBytes: number) {
    super();
  }

  /** Where the body `nextFrame` found lies: frameBytes[frameStart, frameEnd). Valid until the next push or read. */
  frameBytes: Buffer = this.head;
  frameStart = 0;
  frameEnd = 0;

  /**
   * Finds the next complete body without making a view of it (true, and
   * `frameBytes`/`frameStart`/`frameEnd` say where), or false (need more
   * bytes). Throws FrameError.
   */
  nextFrame(): boolean {
    let avail = this.head.length - this.offset;
    if (avail < FRAME_HEADER_BYTES) {
      if (avail + this.tailBytes < FRAME_HEADER_BYTES) return false;
      this.merge();
      avail = this.head.length - this.offset;
    }
    const head = this.head;
    const at = this.offset;
    const length = ((head[at]! << 24) | (head[at + 1]! << 16) | (head[at + 2]! << 8) | head[at + 3]!) >>> 0;
    checkFrameLength(length, this.maxFrameBytes);
    const need = FRAME_HEADER_BYTES + length;
    if (avail < need) {
      if (avail + this.tailBytes < need) return false;
      this.merge();
    }
    const start = this.offset + FRAME_HEADER_BYTES;
    this.offset = start + length;
    this.frameBytes = this.head;
    this.frameStart = start;
    this.frameEnd = this.offset;
    return true;
  }

  /**
   * The bodies complete in the current buffer from the read position, at
   * most `max`, without reading them: body k is aheadBytes[spans[2k],
   * spans[2k + 1]). Returns how many. Stops at a header that is not
   * complete or not valid (nextFrame then says why). For a look-ahead only
   * (the server warms the keydir for a batch's keys); the read position does
   * not move.
   */
  bodiesAhead(spans: Int32Array, max: number): number {
    const head = this.head;
    let at = this.offset;
    let n = 0;
    while (n < max && head.length - at >= FRAME_HEADER_BYTES) {
      const length = ((head[at]! << 24) | (head[at + 1]! << 16) | (head[at + 2]! << 8) | head[at + 3]!) >>> 0;
      if (length === 0 || length > this.maxFrameBytes || head.length - at - FRAME_HEADER_BYTES < length)
        break;
      spans[2 * n] = at + FRAME_HEADER_BYTES;
      at += FRAME_HEADER_BYTES + length;
      spans[2 * n + 1] = at;
      n++;
    }
    return n;
  }

  /** The buffer bodiesAhead's spans index. */
  get aheadBytes(): Buffer {
    return this.head;
  }

  /** The next complete body (a view; valid as long as the caller keeps it), or undefined. Throws FrameError. */
  next(): Buffer | undefined {
    return this.nextFrame() ? this.frameBytes.subarray(this.frameStart, this.frameEnd) : undefined;
  }
}
