/**
 * A write tick's undo log: the keydir entries the tick's writes replaced,
 * put back newest first if the tick's write is refused (segment-log.ts,
 * rollbackTick).
 *
 * One entry per change: the key, and where it pointed before (segment,
 * position, value length, expiry; segment -1 = the key was absent). Keys go
 * in an array, locations in Float64Array pages (expiry times are past 2^31),
 * both reused from tick to tick: a write allocates nothing here. A key
 * given as bytes (pushBytes: the server's SET, which makes no key string)
 * is copied into a byte arena, u16 length first, and its array entry is
 * its place there; its string is made only if the tick is undone. A tick
 * larger than UNDO_KEEP_ENTRIES (a replica applying megabytes at once) gives
 * its room back when it ends.
 *
 * The locations are pages of PAGE_ENTRIES (64 KiB), not one array doubled:
 * a bulk load's ticks grew that array to 1 MiB and dropped it at every tick's
 * end, and glibc raised its mmap threshold to 1 MiB at the first such free,
 * so every buffer below 1 MiB came from the brk heap from then on, where the
 * freed ones stayed resident (ARCHITECTURE.md "Server memory"). Pages below
 * glibc's initial 128 KiB threshold are recycled within the brk heap.
 */
import { copyWords } from './copy-words.js';
import { UNDO_KEEP_ENTRIES } from './limits.js';

const STRIDE = 4;
/** Entries per page of locations: 2048 × 4 × 8 B = 64 KiB, below glibc's initial mmap threshold. */
const PAGE_SHIFT = 11;
const PAGE_ENTRIES = 1 << PAGE_SHIFT;
const PAGE_MASK = PAGE_ENTRIES - 1;
/** The key arena's first size, and the size a large tick's arena goes back to at clear. */
const ARENA_KEEP_BYTES = 16 * 1024;

function viewOf(buf: Buffer): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.length);
}

export class UndoLog {
  /** A key's string, or where its bytes are in `arena` (pushBytes). */
  private keys: (string | number)[] = [];
  private arena = Buffer.allocUnsafeSlow(ARENA_KEEP_BYTES);
  private arenaView = viewOf(this.arena);
  /** Bytes of `arena` used since the last clear. */
  private arenaUsed = 0;
  private pages: Float64Array[] = [new Float64Array(STRIDE * PAGE_ENTRIES)];
  /** Entries recorded since the last clear. */
  length = 0;

  push(key: string, segment: number, position: number, valueLength: number, expiresAt: number): void {
    this.keys[this.length] = key;
    this.pushLocation(segment, position, valueLength, expiresAt);
  }

  /**
   * `push` of the key of `length` bytes (1..MAX_KEY_BYTES, latin1) at
   * `start` in `view` (the record just appended), copied by 32-bit words:
   * a DataView word costs about what one typed-array byte does
   * (ARCHITECTURE.md, setView). No string made.
   */
  pushBytes(
    view: DataView,
    start: number,
    length: number,
    segment: number,
    position: number,
    valueLength: number,
    expiresAt: number,
  ): void {
    const from = this.arenaUsed;
    if (from + 2 + length > this.arena.length) this.growArena(from + 2 + length);
    const a = this.arenaView;
    a.setUint16(from, length, true);
    const at = from + 2;
    copyWords(view, start, a, at, length);
    this.keys[this.length] = from;
    this.arenaUsed = at + length;
    this.pushLocation(segment, position, valueLength, expiresAt);
  }

  private growArena(needed: number): void {
    let size = this.arena.length * 2;
    while (size < needed) size *= 2;
    const grown = Buffer.allocUnsafeSlow(size);
    this.arena.copy(grown, 0, 0, this.arenaUsed);
    this.arena = grown;
    this.arenaView = viewOf(grown);
  }

  /** The key of entry i, made a string now for a pushBytes entry. */
  private keyOf(i: number): string {
    const k = this.keys[i]!;
    if (typeof k === 'string') return k;
    const a = this.arena;
    return a.toString('latin1', k + 2, k + 2 + (a[k]! | (a[k + 1]! << 8)));
  }

  private pushLocation(segment: number, position: number, valueLength: number, expiresAt: number): void {
    const n = this.length;
    const p = n >>> PAGE_SHIFT;
    if (p === this.pages.length) this.pages.push(new Float64Array(STRIDE * PAGE_ENTRIES));
    const l = this.pages[p]!;
    const at = STRIDE * (n & PAGE_MASK);
    l[at] = segment;
    l[at + 1] = position;
    l[at + 2] = valueLength;
    l[at + 3] = expiresAt;
    this.length = n + 1;
  }

  /** Calls `each` for every entry, newest first. */
  forEachNewestFirst(
    each: (key: string, segment: number, position: number, valueLength: number, expiresAt: number) => void,
  ): void {
    for (let i = this.length - 1; i >= 0; i--) {
      const l = this.pages[i >>> PAGE_SHIFT]!;
      const at = STRIDE * (i & PAGE_MASK);
      each(this.keyOf(i), l[at]!, l[at + 1]!, l[at + 2]!, l[at + 3]!);
    }
  }

  /** Forgets every entry; keeps the room unless this tick made it large. */
  clear(): void {
    if (this.length > UNDO_KEEP_ENTRIES) {
      this.keys = [];
      this.pages.length = Math.ceil(UNDO_KEEP_ENTRIES / PAGE_ENTRIES);
    }
    if (this.arena.length > ARENA_KEEP_BYTES) {
      this.arena = Buffer.allocUnsafeSlow(ARENA_KEEP_BYTES);
      this.arenaView = viewOf(this.arena);
    }
    this.arenaUsed = 0;
    this.length = 0;
  }
}
