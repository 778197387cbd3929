/**
 * A write tick's undo log: the keydir entries the tick's writes replaced,
 * put back newest first if the tick's write is refused (segment-log.ts,
 * rollbackTick).
 *
 * One entry per change: the key, and where it pointed before (segment,
 * position, value length, expiry; segment -1 = the key was absent). Keys go
 * in an array, locations in a Float64Array (expiry times are past 2^31),
 * both reused from tick to tick: a write allocates nothing here. A tick
 * larger than UNDO_KEEP_ENTRIES (a replica applying megabytes at once) gives
 * its room back when it ends.
 */
import { UNDO_KEEP_ENTRIES } from './limits.js';

const STRIDE = 4;
const INITIAL_ENTRIES = 256;

export class UndoLog {
  private keys: string[] = [];
  private locations = new Float64Array(STRIDE * INITIAL_ENTRIES);
  /** Entries recorded since the last clear. */
  length = 0;

  push(key: string, segment: number, position: number, valueLength: number, expiresAt: number): void {
    const n = this.length;
    let l = this.locations;
    if (STRIDE * (n + 1) > l.length) {
      l = new Float64Array(l.length * 2);
      l.set(this.locations);
      this.locations = l;
    }
    this.keys[n] = key;
    const at = STRIDE * n;
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
    const l = this.locations;
    for (let i = this.length - 1; i >= 0; i--) {
      const at = STRIDE * i;
      each(this.keys[i]!, l[at]!, l[at + 1]!, l[at + 2]!, l[at + 3]!);
    }
  }

  /** Forgets every entry; keeps the room unless this tick made it large. */
  clear(): void {
    if (this.length > UNDO_KEEP_ENTRIES) {
      this.keys = [];
      this.locations = new Float64Array(STRIDE * INITIAL_ENTRIES);
    }
    this.length = 0;
  }
}
