/**
 * The keydir: key → where its latest live record is (segment id, record
 * position, value length, expiry). Designed for memory (DESIGN.md §4): keys
 * map to a small-integer slot in sharded Maps; the location lives in paged
 * typed arrays (10 bytes a slot); expiry lives in a side Map only for keys
 * that have one, flagged by the top bit of the value length.
 *
 * Keys are the latin1 form of the key bytes: one byte per char, flat, and
 * key.length is the key's byte length.
 *
 * Single-threaded: only the event loop touches it. The compactor's swap uses
 * `moveIfAt`, a compare-and-set: an entry moves only if it still points where
 * the compactor read it, so a write that landed during the merge wins.
 */
import { KEYDIR_PAGE_SLOTS, KEYDIR_SHARDS } from './limits.js';

const PAGE_SHIFT = Math.log2(KEYDIR_PAGE_SLOTS);
const PAGE_MASK = KEYDIR_PAGE_SLOTS - 1;
const HAS_EXPIRY = 0x80000000;
const LENGTH_MASK = 0x7fffffff;

/** FNV-1a over the key's chars (at most 32 of them: the first 8 and the last 24). */
function shardOf(key: string): number {
  let h = 0x811c9dc5;
  const n = key.length;
  if (n <= 32) {
    for (let i = 0; i < n; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  } else {
    for (let i = 0; i < 8; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
    for (let i = n - 24; i < n; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  }
  return (h ^ (h >>> 16)) & (KEYDIR_SHARDS - 1);
}

export interface Location {
  segment: number;
  position: number;
  valueLength: number;
  /** ms since epoch, 0 = never. */
  expiresAt: number;
}

export class Keydir {
  private readonly shards: Map<string, number>[] = [];
  private segPages: Uint16Array[] = [];
  private posPages: Uint32Array[] = [];
  private lenPages: Uint32Array[] = [];
  private readonly expiries = new Map<string, number>();
  private freeSlots: number[] = [];
  private nextSlot = 0;

  constructor() {
    for (let i = 0; i < KEYDIR_SHARDS; i++) this.shards.push(new Map());
  }

  get size(): number {
    let n = 0;
    for (const m of this.shards) n += m.size;
    return n;
  }

  /** Number of keys that carry an expiry. */
  get expiringKeys(): number {
    return this.expiries.size;
  }

  /** The slot of `key`, or -1. Slots are stable until the key is deleted. */
  slot(key: string): number {
    return this.shards[shardOf(key)]!.get(key) ?? -1;
  }

  segmentOf(slot: number): number {
    return this.segPages[slot >>> PAGE_SHIFT]![slot & PAGE_MASK]!;
  }

  positionOf(slot: number): number {
    return this.posPages[slot >>> PAGE_SHIFT]![slot & PAGE_MASK]!;
  }

  valueLengthOf(slot: number): number {
    return this.lenPages[slot >>> PAGE_SHIFT]![slot & PAGE_MASK]! & LENGTH_MASK;
  }

  expiresAtOf(slot: number, key: string): number {
    const l = this.lenPages[slot >>> PAGE_SHIFT]![slot & PAGE_MASK]!;
    return (l & HAS_EXPIRY) === 0 ? 0 : (this.expiries.get(key) ?? 0);
  }

  get(key: string): Location | undefined {
    const s = this.slot(key);
    if (s < 0) return undefined;
    return {
      segment: this.segmentOf(s),
      position: this.positionOf(s),
      valueLength: this.valueLengthOf(s),
      expiresAt: this.expiresAtOf(s, key),
    };
  }

  /** Points `key` at a record; returns the slot. */
  set(key: string, segment: number, position: number, valueLength: number, expiresAt: number): number {
    const shard = this.shards[shardOf(key)]!;
    let s = shard.get(key);
    if (s === undefined) {
      s = this.allocSlot();
      shard.set(key, s);
    }
    this.write(s, key, segment, position, valueLength, expiresAt);
    return s;
  }

  /** Removes `key`; returns whether it was there. */
  delete(key: string): boolean {
    const shard = this.shards[shardOf(key)]!;
    const s = shard.get(key);
    if (s === undefined) return false;
    shard.delete(key);
    if (this.lenPages[s >>> PAGE_SHIFT]![s & PAGE_MASK]! & HAS_EXPIRY) this.expiries.delete(key);
    this.freeSlots.push(s);
    return true;
  }

  /**
   * Compare-and-set for the compactor: moves `key` to (segment, position) only
   * if it still points at (fromSegment, fromPosition). Returns whether it moved.
   */
  moveIfAt(
    key: string,
    fromSegment: number,
    fromPosition: number,
    segment: number,
    position: number,
  ): boolean {
    const s = this.slot(key);
    if (s < 0 || this.segmentOf(s) !== fromSegment || this.positionOf(s) !== fromPosition) return false;
    this.segPages[s >>> PAGE_SHIFT]![s & PAGE_MASK] = segment;
    this.posPages[s >>> PAGE_SHIFT]![s & PAGE_MASK] = position;
    return true;
  }

  /** Every key with its slot, shard by shard (insertion order within a shard). */
  *entries(): IterableIterator<[string, number]> {
    for (const m of this.shards) yield* m;
  }

  /** Keys with an expiry, with it (ms since epoch). */
  expiring(): IterableIterator<[string, number]> {
    return this.expiries.entries();
  }

  clear(): void {
    for (const m of this.shards) m.clear();
    this.segPages = [];
    this.posPages = [];
    this.lenPages = [];
    this.expiries.clear();
    this.freeSlots = [];
    this.nextSlot = 0;
  }

  private write(
    s: number,
    key: string,
    segment: number,
    position: number,
    valueLength: number,
    expiresAt: number,
  ): void {
    const page = s >>> PAGE_SHIFT;
    const i = s & PAGE_MASK;
    this.segPages[page]![i] = segment;
    this.posPages[page]![i] = position;
    if (expiresAt > 0) {
      this.lenPages[page]![i] = (valueLength | HAS_EXPIRY) >>> 0;
      this.expiries.set(key, expiresAt);
    } else {
      if (this.lenPages[page]![i]! & HAS_EXPIRY) this.expiries.delete(key);
      this.lenPages[page]![i] = valueLength;
    }
  }

  private allocSlot(): number {
    const free = this.freeSlots.pop();
    if (free !== undefined) {
      // A freed slot may still carry the expiry bit of its last key.
      this.lenPages[free >>> PAGE_SHIFT]![free & PAGE_MASK] = 0;
      return free;
    }
    const s = this.nextSlot++;
    if ((s & PAGE_MASK) === 0) {
      this.segPages.push(new Uint16Array(KEYDIR_PAGE_SLOTS));
      this.posPages.push(new Uint32Array(KEYDIR_PAGE_SLOTS));
      this.lenPages.push(new Uint32Array(KEYDIR_PAGE_SLOTS));
    }
    return s;
  }
}
