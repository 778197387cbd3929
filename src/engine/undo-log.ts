/**
 * A write tick's undo log: the keydir entries the tick's writes replaced,
 * put back newest first if the tick's write is refused (segment-log.ts,
 * rollbackTick).
 *
 * One entry per change: the key, and where it pointed before (segment,
 * position, value length, expiry; segment -1 = the key was absent). Keys go
 * in an array, locations in Float64Array pages (expiry times are past 2^31),
 * both reused from tick to tick: a write allocates nothing here. A tick
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
import { UNDO_KEEP_ENTRIES } from './limits.js';

const STRIDE = 4;
/** Entries per page of locations: 2048 × 4 × 8 B = 64 KiB, below glibc's initial mmap threshold. */
const PAGE_SHIFT = 11;
const PAGE_ENTRIES = 1 << PAGE_SHIFT;
const PAGE_MASK = PAGE_ENTRIES - 1;

export class UndoLog {
  private keys: string[] = [];
  private pages: Float64Array[] = [new Float64Array(STRIDE * PAGE_ENTRIES)];
  /** Entries recorded since the last clear. */
  length = 0;

  push(key: string, segment: number, position: number, valueLength: number, expiresAt: number): void {
    const n = this.length;
    const p = n >>> PAGE_SHIFT;
    if (p === this.pages.length) this.pages.push(new Float64Array(STRIDE * PAGE_ENTRIES));
    const l = this.pages[p]!;
    this.keys[n] = key;
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
      each(this.keys[i]!, l[at]!, l[at + 1]!, l[at + 2]!, l[at + 3]!);
    }
  }

  /** Forgets every entry; keeps the room unless this tick made it large. */
  clear(): void {
    if (this.length > UNDO_KEEP_ENTRIES) {
      this.keys = [];
      this.pages.length = Math.ceil(UNDO_KEEP_ENTRIES / PAGE_ENTRIES);
    }
    this.length = 0;
  }
}
