/**
 * The keydir: key → where its latest live record is (segment id, record
 * position, value length, expiry). Designed for memory (DESIGN.md §4): no JS
 * object or string per key. Every key owns a small-integer slot; the slot's
 * fields live in paged typed arrays, its key bytes in a byte arena, and an
 * open-addressing hash table (linear probing, backward-shift deletion) maps
 * the key's hash to its slot. About 33 bytes a key for 16-byte keys, of which
 * 16 are the key itself (a Map<string, slot> costs ~90 and tops out at 2^24
 * entries).
 *
 *   slot record  28 B, 7 u32 words, in pages of KEYDIR_PAGE_SLOTS records
 *                (one ArrayBuffer each):
 *                  w0  segment u16 (low) · keyLength u16 (high)
 *                  w1  position u32
 *                  w2  valueLength (low 31 bits) · has-an-expiry (top bit)
 *                  w3-w6  the key's first KEYDIR_INLINE_KEY_BYTES (16) bytes
 *                No hash: a rebuild and a delete's backward shift rehash the
 *                key from its bytes (issue 15: 4 B a key, 4 MiB at 1M keys;
 *                it was w3 of a 32-byte record until then).
 *                keyAt, the arena offset of a key's bytes past the inline
 *                ones, is in side pages (a u32 per slot, and a u8 more once
 *                the arena passes 4 GiB), made only once a key is longer
 *                than KEYDIR_INLINE_KEY_BYTES
 *   table        Int32Array of 4-byte buckets, 0 = empty: slot + 1 in the low
 *                `slotBits` bits (KEYDIR_SLOT_BITS, widened if the slots
 *                outgrow them), the top bits of the key's hash (its tag) in
 *                the rest; load kept at most KEYDIR_MAX_LOAD, so 4/load bytes
 *                per key (8/load with [hash, slot] pairs, until issue 15)
 *   arena        the bytes of keys past their first 16, in chunks of
 *                KEYDIR_ARENA_CHUNK_BYTES (empty while every key is short)
 * Expiry lives in a side Map only for keys that have one.
 *
 * Memory reads: a lookup reads its table bucket(s), which reject a
 * different key by the hash's tag (all but 1 in 2^(32 - slotBits), 1 in 64
 * below 2^26 keys), then the record whose tag matched, which rejects the
 * rest by the key's length and bytes: the key's length, its bytes (up to 16
 * inline) and its whole location are in that one record, so a hit on a key
 * of up to 16 bytes (the benchmarks' and most users') costs two dependent
 * cache misses (three when the record straddles two cache lines, 6 records
 * in 16), and an overwrite (compare, note the old location, write the new
 * one) the same. A longer key adds one arena read. Keys shorter than 16
 * bytes pay for the unused inline bytes (a record is 28 B whatever the key),
 * longer ones nothing over a separate arena.
 *
 * Keys are the latin1 form of the key bytes: one byte per char, and
 * key.length is the key's byte length (keys.ts). The hint loader passes keys
 * as bytes instead (setBytes/deleteBytes, hashed by hashBytes to the same
 * value), so a restart builds no string per key.
 *
 * A freed slot keeps its arena bytes; the next key that fits reuses them
 * (always, with fixed-size keys). Arena bytes freed for good are counted and
 * the arena is rewritten once they outweigh the live ones, so deletes never
 * leak memory (an O(keys) step, amortised over as many deletes). The table
 * doubles at KEYDIR_MAX_LOAD, incrementally (as Redis's dict): the new table
 * takes new keys at once, and the old one's keys move over in slot order, a
 * batch at a time (KEYDIR_REHASH_SLOTS every KEYDIR_REHASH_EVERY calls:
 * slot order reads the records, which hold the key bytes to rehash, one
 * page after another, where bucket order read one at random per key, 3x the
 * CPU); until the last has moved, a key the new table lacks is looked up in
 * the old one, whose entries for slots below the cursor are stale (moved)
 * and skipped. The old table takes no new entry; a key deleted from it
 * leaves a MOVED mark, never an empty bucket, so its probe runs stay
 * whole. The new table is prefaulted by the thread pool from 3/4 of the
 * doubling's key count (KEYDIR_TABLE_PREFAULT_FROM, prefault.ts) and taken
 * if its fill is done, so the event loop's writes into it cost no page
 * fault. Recovery sizes the table up front from the hint files' entry
 * counts (`reserve`), so a restart rehashes nothing, and shrinks it once at
 * the end if that estimate was far too high (`fit`); both rebuild it in one
 * step.
 * `resizes` counts the rehashes.
 *
 * Single-threaded: only the event loop touches it. The compactor's swap uses
 * `moveIfAt`, a compare-and-set: an entry moves only if it still points where
 * the compactor read it, so a write that landed during the merge wins.
 *
 * `values`, the small-value cache (slot-cache.ts), is addressed by slot: every
 * change of what a slot points at (write, freeSlot, clear) drops the slot's
 * cached value here, whichever path the change comes from. Moves keep it
 * (the record moved, its value is the same).
 */

import { randomBytes } from 'node:crypto';
import { endianness } from 'node:os';
import { KvError } from '../errors.js';
import {
  KEYDIR_ARENA_CHUNK_BYTES,
  KEYDIR_INITIAL_CAPACITY,
  KEYDIR_INLINE_KEY_BYTES,
  KEYDIR_MAX_LOAD,
  KEYDIR_MAX_RESERVE_KEYS,
  KEYDIR_PAGE_SLOTS,
  KEYDIR_PREFAULT_PAGES,
  KEYDIR_REHASH_EVERY,
  KEYDIR_REHASH_SLOTS,
  KEYDIR_SLOT_BITS,
  KEYDIR_TABLE_PREFAULT_FROM,
  KEYDIR_TABLE_PREFAULT_MIN_BYTES,
  KEYDIR_WARM_PROBES,
  MAX_SEGMENTS,
} from './limits.js';
import { PrefaultAhead, PrefaultPool } from './prefault.js';
import { tableBuffer, tableInt32Array } from './slabs.js';
import type { SlotCache } from './slot-cache.js';
import { AS_VARIABLE } from './v8-fields.js';

const PAGE_SHIFT = Math.log2(KEYDIR_PAGE_SLOTS);
const PAGE_MASK = KEYDIR_PAGE_SLOTS - 1;
/** u32 words of a slot record (see the header), and the word index of each field. */
const RECORD_WORDS = 7;
const RECORD_BYTES = 4 * RECORD_WORDS;
const W_SEGMENT_KEYLEN = 0;
const W_POSITION = 1;
const W_VALUE_LENGTH = 2;
/** Word index of the record's last word (`warmRecords` reads it too: the record may end on the next cache line). */
const W_LAST = RECORD_WORDS - 1;
/** Word index and byte offset of the inline key bytes in a record. */
const W_INLINE = 3;
const INLINE_AT = 4 * W_INLINE;
const INLINE = KEYDIR_INLINE_KEY_BYTES;
const SEGMENT_MASK = 0xffff;
/**
 * hashOfSlot hashes a key's inline bytes read as u32 words, and the
 * compactor sorts [slot, position] pairs as u64s: both take the words' byte
 * order to be memory order. On a big-endian machine the rehashed keys would
 * miss their buckets, silently; the store refuses to open there instead.
 */
const LITTLE_ENDIAN = endianness() === 'LE';
const KEYLEN_SHIFT = 16;
const HAS_EXPIRY = 0x80000000;
const LENGTH_MASK = 0x7fffffff;
/** Segment id of a free slot: MAX_SEGMENTS ids (0..MAX_SEGMENTS-1) are real. */
const FREE = MAX_SEGMENTS;
/** Slots a rebuild hashes before placing them (two passes per batch, see rebuild). */
const REBUILD_BATCH = 1024;
/** Slots and hashes of one batch of placeSlots (single-threaded: one keydir places at a time). */
const BATCH_SLOTS = new Int32Array(REBUILD_BATCH);
const BATCH_HASHES = new Int32Array(REBUILD_BATCH);
/** A short key's arena bytes in hashOfSlot: none. */
const EMPTY_BYTES: Buffer = Buffer.alloc(0);
/** Keys up to this many bytes are copied into the arena by a JS loop, longer ones by Buffer.copy. */
const KEY_COPY_LOOP_BYTES = 32;

/**
 * The keydir hash is HalfSipHash-1-3 (Aumasson and Bernstein's SipHash on
 * 32-bit words, one SipRound per word and three to finish, as Linux's
 * hsiphash on 32-bit machines) of the key's bytes under a 64-bit key drawn
 * from crypto.randomBytes once per process (HASH_KEY). A client chooses its
 * keys: with an unkeyed hash (FNV-1a until issue 15, then murmur3_32 with
 * seed 0) it can choose thousands that share one hash, and every insert and
 * lookup of them walks one probe run that grows with each key (hash
 * flooding: 4,096 such 104-byte keys took 2,048 probes per hit and 40x the
 * insert time of random ones; murmur3 has multicollisions whatever its seed,
 * test/engine/keydir-flood.test.ts builds them). Under a secret key a
 * client cannot tell which keys share a bucket; Redis keys its dict's
 * SipHash-1-3 the same way. In memory only: no file and no message holds a
 * keydir hash (hint entries hold the key's bytes and a restart hashes them
 * again), so each process draws its own key.
 *
 * A key's bytes go in as little-endian 32-bit words, a SipRound each, then
 * its last 0-3 bytes with its length (mod 256) in the top byte as one more
 * word. Each path to the hash reads the key's words its own way and
 * compresses them in its own loop (sipFinish says why): hashOf a string's
 * chars, hashBytes a Uint8Array's bytes, hashView a DataView's words,
 * Keydir.hashOfSlot a record's inline words and then the arena's bytes.
 */
const HASH_KEY = randomBytes(8);
const K0 = HASH_KEY.readInt32LE(0);
const K1 = HASH_KEY.readInt32LE(4);
/** HalfSipHash's initial v2 and v3 before the key: "lyge" and "tedb", as in its reference. */
const V2 = 0x6c796765 ^ K0;
const V3 = 0x74656462 ^ K1;

/** The process's keydir hash key (a copy): for tests that check the hash against HalfSipHash-1-3's reference. */
export function keydirHashKey(): Buffer {
  return Buffer.from(HASH_KEY);
}

/**
 * The hash from the state after a key's whole words: its last word `last`
 * (the key's 0-3 tail bytes | its length << 24) compressed, then the three
 * finishing rounds. Every path's loop compresses the whole words itself,
 * with the SipRound written out in it: the state is four numbers, and a
 * shared round (or gathering the words for one loop) cost 8-10 ns of a
 * 16-byte key's ~17 (V8 keeps the four in registers only within one function).
 */
function sipFinish(v0: number, v1: number, v2: number, v3: number, last: number): number {
  v3 ^= last;
  for (let r = 0; r < 4; r++) {
    // A SipRound on 32-bit words (rotations 5, 16, 8, 7, 13, 16).
    v0 = (v0 + v1) | 0;
    v1 = ((v1 << 5) | (v1 >>> 27)) ^ v0;
    v0 = (v0 << 16) | (v0 >>> 16);
    v2 = (v2 + v3) | 0;
    v3 = ((v3 << 8) | (v3 >>> 24)) ^ v2;
    v0 = (v0 + v3) | 0;
    v3 = ((v3 << 7) | (v3 >>> 25)) ^ v0;
    v2 = (v2 + v1) | 0;
    v1 = ((v1 << 13) | (v1 >>> 19)) ^ v2;
    v2 = (v2 << 16) | (v2 >>> 16);
    if (r === 0) {
      v0 ^= last;
      v2 ^= 0xff;
    }
  }
  return v1 ^ v3;
}

/** The keydir hash of the key's chars (latin1: one byte each). */
function hashOf(key: string): number {
  const n = key.length;
  const whole = n & ~3;
  let v0 = K0;
  let v1 = K1;
  let v2 = V2;
  let v3 = V3;
  for (let i = 0; i < whole; i += 4) {
    const m =
      key.charCodeAt(i) |
      (key.charCodeAt(i + 1) << 8) |
      (key.charCodeAt(i + 2) << 16) |
      (key.charCodeAt(i + 3) << 24);
    v3 ^= m;
    // A SipRound on 32-bit words (rotations 5, 16, 8, 7, 13, 16).
    v0 = (v0 + v1) | 0;
    v1 = ((v1 << 5) | (v1 >>> 27)) ^ v0;
    v0 = (v0 << 16) | (v0 >>> 16);
    v2 = (v2 + v3) | 0;
    v3 = ((v3 << 8) | (v3 >>> 24)) ^ v2;
    v0 = (v0 + v3) | 0;
    v3 = ((v3 << 7) | (v3 >>> 25)) ^ v0;
    v2 = (v2 + v1) | 0;
    v1 = ((v1 << 13) | (v1 >>> 19)) ^ v2;
    v2 = (v2 << 16) | (v2 >>> 16);
    v0 ^= m;
  }
  let t = 0;
  for (let i = n - 1; i >= whole; i--) t = (t << 8) | key.charCodeAt(i);
  return sipFinish(v0, v1, v2, v3, (n << 24) | t);
}

/**
 * hashOf of a key given as bytes: `hashBytes(b, s, n) === hashOf(b.latin1Slice(s, s + n))`,
 * so keys loaded from a hint file and keys written through `set` meet in the same buckets.
 */
export function hashBytes(buf: Uint8Array, start: number, length: number): number {
  const whole = start + (length & ~3);
  let v0 = K0;
  let v1 = K1;
  let v2 = V2;
  let v3 = V3;
  for (let i = start; i < whole; i += 4) {
    const m = buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24);
    v3 ^= m;
    // A SipRound on 32-bit words (rotations 5, 16, 8, 7, 13, 16).
    v0 = (v0 + v1) | 0;
    v1 = ((v1 << 5) | (v1 >>> 27)) ^ v0;
    v0 = (v0 << 16) | (v0 >>> 16);
    v2 = (v2 + v3) | 0;
    v3 = ((v3 << 8) | (v3 >>> 24)) ^ v2;
    v0 = (v0 + v3) | 0;
    v3 = ((v3 << 7) | (v3 >>> 25)) ^ v0;
    v2 = (v2 + v1) | 0;
    v1 = ((v1 << 13) | (v1 >>> 19)) ^ v2;
    v2 = (v2 << 16) | (v2 >>> 16);
    v0 ^= m;
  }
  let t = 0;
  for (let i = start + length - 1; i >= whole; i--) t = (t << 8) | buf[i]!;
  return sipFinish(v0, v1, v2, v3, (length << 24) | t);
}

/**
 * hashBytes of the `length` bytes at `at` in `view`, read as little-endian
 * 32-bit words then the tail (the same value): a record just encoded, where
 * byte reads cost ~4x the instructions (V8 checks the array at every byte).
 */
export function hashView(view: DataView, at: number, length: number): number {
  const whole = at + (length & ~3);
  let v0 = K0;
  let v1 = K1;
  let v2 = V2;
  let v3 = V3;
  for (let i = at; i < whole; i += 4) {
    const m = view.getInt32(i, true);
    v3 ^= m;
    // A SipRound on 32-bit words (rotations 5, 16, 8, 7, 13, 16).
    v0 = (v0 + v1) | 0;
    v1 = ((v1 << 5) | (v1 >>> 27)) ^ v0;
    v0 = (v0 << 16) | (v0 >>> 16);
    v2 = (v2 + v3) | 0;
    v3 = ((v3 << 8) | (v3 >>> 24)) ^ v2;
    v0 = (v0 + v3) | 0;
    v3 = ((v3 << 7) | (v3 >>> 25)) ^ v0;
    v2 = (v2 + v1) | 0;
    v1 = ((v1 << 13) | (v1 >>> 19)) ^ v2;
    v2 = (v2 << 16) | (v2 >>> 16);
    v0 ^= m;
  }
  let t = 0;
  for (let i = at + length - 1; i >= whole; i--) t = (t << 8) | view.getUint8(i);
  return sipFinish(v0, v1, v2, v3, (length << 24) | t);
}

export interface Location {
  segment: number;
  position: number;
  valueLength: number;
  /** ms since epoch, 0 = never. */
  expiresAt: number;
}

export class Keydir {
  /** Buckets: slot + 1 in the bits of slotMask, the hash's tag in those of tagMask; 0 = empty. */
  private table = new Int32Array(KEYDIR_INITIAL_CAPACITY);
  private mask = KEYDIR_INITIAL_CAPACITY - 1;
  private slotBits: number;
  private slotMask = 0;
  private tagMask = 0;
  private count = 0;
  /**
   * While a doubling is under way: the table before it, whose entries for
   * slots from `moveSlot` on are the keys not moved yet (MOVED marks where
   * one was deleted), its mask, the next slot to move, one past the last
   * (the slots in use when it began), and the calls since the last step.
   */
  private old: Int32Array | undefined;
  private oldMask = 0;
  private moveSlot = 0;
  private endSlot = 0;
  private sinceMove = 0;
  /** A doubling or an arena evacuation is under way: calls take steps of it (rehashStep). */
  private steps = false;
  /**
   * Bit per slot in [moveSlot, endSlot) that a new key took (a freed slot
   * reused) and put in the new table already: the move skips it. Made only
   * when a doubling reuses a slot.
   */
  private newInRange: Uint8Array | undefined;
  private rehashes = 0;

  /** The slot records (header), KEYDIR_PAGE_SLOTS a page, as u32 words. */
  private pages: Uint32Array[] = [];
  /** The same pages as bytes (the inline key bytes). */
  private bytePages: Buffer[] = [];
  /** Where new record pages come from: prefaulted a page ahead, zero-filled (prefault.ts). */
  private readonly recordPages = new PrefaultPool(
    () => Buffer.from(new ArrayBuffer(KEYDIR_PAGE_SLOTS * RECORD_BYTES)),
    KEYDIR_PREFAULT_PAGES,
    true,
  );
  /**
   * The table the next doubling takes, prefaulted once the keys reach
   * KEYDIR_TABLE_PREFAULT_FROM of the count that doubles it (a load of new
   * keys wrote every page of each new table first from the event loop);
   * zero-filled when taken. Started at `tablePrefaultAt` keys (Infinity:
   * started, or the next table is too small to be worth it).
   */
  private readonly nextTable = new PrefaultAhead(true);
  private tablePrefaultAt = Number.POSITIVE_INFINITY;
  /** Doublings that took a prefaulted table (tests). */
  prefaultedTables = 0;
  /** Arena offsets of the keys past their inline bytes (bits 0-31), only once a key is that long (then one page per slot page). */
  private keyAtPages: Uint32Array[] | undefined;
  /** Bits 32-39 of the arena offsets, only once the arena has passed 4 GiB (then one page per slot page). */
  private keyAtHighPages: Uint8Array[] | undefined;
  private nextSlot = 0;
  private freeSlots: number[] = [];

  /**
   * Key bytes past the inline ones, in chunks; a key's keyAt is its chunk's
   * index times the chunk size plus its place there. An index is empty once
   * an evacuation emptied its chunk, until a new chunk takes it (freeChunks).
   */
  private arena: (Buffer | undefined)[] = [];
  /** Empty indices of `arena`, taken by new chunks before the array grows. */
  private freeChunks: number[] = [];
  /** Chunks held (arena entries not empty). */
  private heldChunks = 0;
  /** Arena byte offset where the next key goes, and the end of its chunk. */
  private arenaEnd = 0;
  private chunkEnd = 0;
  /** Arena bytes no slot owns any more (freed keys not reused, chunk tails), outside the chunks being evacuated. */
  private deadKeyBytes = 0;
  /**
   * While an evacuation is under way (appendSpace, evacuateSlots): a flag
   * per chunk index for the chunks being emptied (every chunk held when it
   * began), the next slot to look at and one past the last (the slots in use
   * when it began). Keys there are copied to new chunks a step at a time, as
   * a doubling moves table entries; free slots' bytes there are never reused.
   */
  private evacuating: Uint8Array | undefined;
  private evacuateSlot = 0;
  private evacuateEnd = 0;

  private readonly expiries = new Map<string, number>();
  /** The small-value cache by slot, if the store has one; dropped on every change of a slot. */
  values: SlotCache | undefined;
  /** Where `warm` leaves what it read, so its reads are not optimised away. */
  private warmed = 0;

  /**
   * Where the key of the last `set` pointed before it (segment -1: it was
   * absent), so a writer learns the old location without a second lookup.
   */
  prevSegment = -1;
  prevPosition = 0;
  prevValueLength = 0;
  prevExpiresAt = 0;

  /**
   * `firstArenaChunk` (tests only) starts the arena's offsets at that chunk
   * instead of 0, so a test reaches offsets past 4 GiB without the memory;
   * `slotBits` (tests only) starts the buckets' slot field that narrow, so
   * a test widens it with a few keys.
   */
  constructor(firstArenaChunk = 0, slotBits = KEYDIR_SLOT_BITS) {
    if (!LITTLE_ENDIAN) throw new KvError('INTERNAL', 'segkv needs a little-endian machine (x86-64, arm64)');
    // A variable from the start (v8-fields.ts): set at the first table prefault.
    this.tablePrefaultAt = AS_VARIABLE;
    this.tablePrefaultAt = Number.POSITIVE_INFINITY;
    this.slotBits = 0;
    this.setSlotBits(slotBits);
    if (firstArenaChunk > 0) {
      this.arena.length = firstArenaChunk;
      this.arenaEnd = this.chunkEnd = firstArenaChunk * KEYDIR_ARENA_CHUNK_BYTES;
    }
  }

  get size(): number {
    return this.count;
  }

  /** Times the hash table was rebuilt with its entries re-placed (doubled, or shrunk by `fit`). */
  get resizes(): number {
    return this.rehashes;
  }

  /** Buckets of the hash table (a power of two). */
  get capacity(): number {
    return this.mask + 1;
  }

  /** Whether a doubling is still moving keys out of the old table. */
  get rehashing(): boolean {
    return this.old !== undefined;
  }

  /** The key arena's chunks, for tests: held, the length of their index (held and empty), and whether an evacuation is under way. */
  get arenaChunks(): { held: number; indices: number; evacuating: boolean } {
    return { held: this.heldChunks, indices: this.arena.length, evacuating: this.evacuating !== undefined };
  }

  /**
   * Makes room for `keys` keys in all (at most KEYDIR_MAX_RESERVE_KEYS) with
   * no doubling on the way: recovery calls it with the hint files' entry
   * counts before loading them. Never shrinks; on an empty table (recovery's
   * case) it is an allocation, not a rehash.
   */
  reserve(keys: number): void {
    const want = Math.min(Math.max(0, Math.floor(keys)), KEYDIR_MAX_RESERVE_KEYS);
    let capacity = this.mask + 1;
    while (want > capacity * KEYDIR_MAX_LOAD) capacity *= 2;
    if (capacity > this.mask + 1) this.rebuild(capacity);
  }

  /**
   * Shrinks the table when a `reserve` overshot (keys overwritten or deleted
   * across segments count once per hint): while fewer than a quarter of
   * KEYDIR_MAX_LOAD of the buckets are used, it is halved, in one rehash.
   * A table that grew by doubling is never that empty, so this is a no-op then.
   */
  fit(): void {
    let capacity = this.mask + 1;
    while (capacity > KEYDIR_INITIAL_CAPACITY && this.count < (capacity * KEYDIR_MAX_LOAD) / 4) capacity /= 2;
    if (capacity < this.mask + 1) this.rebuild(capacity);
  }

  /** Number of keys that carry an expiry. */
  get expiringKeys(): number {
    return this.expiries.size;
  }

  /**
   * One past the highest slot ever used: slots 0..slotLimit-1 may be read
   * with segmentOf/positionOf (a free one has a segment id no segment has).
   * The compactor's liveness snapshot walks them (compaction/snapshot.ts).
   */
  get slotLimit(): number {
    return this.nextSlot;
  }

  /** The slot of `key`, or -1. Slots are stable until the key is deleted. */
  slot(key: string): number {
    if (this.steps) this.rehashStep();
    const h = hashOf(key);
    const t = this.table;
    const mask = this.mask;
    const tag = h & this.tagMask;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const e = t[i]!;
      if (e === 0) return this.old === undefined ? -1 : this.slotInOld(this.oldBucket(h, key));
      if ((e & this.tagMask) === tag) {
        const s = (e & this.slotMask) - 1;
        if (this.keyEquals(s, key)) return s;
      }
    }
  }

  /** `slot` of the key in buf[start, start + length) (its latin1 chars), with no string built. */
  slotBytes(buf: Buffer, start: number, length: number): number {
    if (this.steps) this.rehashStep();
    const h = hashBytes(buf, start, length);
    const t = this.table;
    const mask = this.mask;
    const tag = h & this.tagMask;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const e = t[i]!;
      if (e === 0)
        return this.old === undefined ? -1 : this.slotInOld(this.oldBucketBytes(h, buf, start, length));
      if ((e & this.tagMask) === tag) {
        const s = (e & this.slotMask) - 1;
        if (this.keyEqualsBytes(s, buf, start, length)) return s;
      }
    }
  }

  /**
   * `slotBytes` of the key of `length` bytes at `at` in `view` (the server's
   * read buffer: a GET's key in its request frame), hashed and compared by
   * 32-bit words (hashView, keyEqualsView) instead of bytes.
   */
  slotView(view: DataView, at: number, length: number): number {
    if (this.steps) this.rehashStep();
    const h = hashView(view, at, length);
    const t = this.table;
    const mask = this.mask;
    const tag = h & this.tagMask;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const e = t[i]!;
      if (e === 0)
        return this.old === undefined ? -1 : this.slotInOld(this.oldBucketView(h, view, at, length));
      if ((e & this.tagMask) === tag) {
        const s = (e & this.slotMask) - 1;
        this.values?.warmEntry(s);
        if (this.keyEqualsView(s, view, at, length)) return s;
      }
    }
  }

  /**
   * hashOf of the key at live slot `s`, from its stored bytes (records keep
   * no hash): what a rebuild places it by and a delete's shift finds its home by.
   */
  private hashOfSlot(s: number): number {
    const page = s >>> PAGE_SHIFT;
    const at = s & PAGE_MASK;
    const n = this.keyLengthAt(page, at);
    const words = this.pages[page]!;
    const w0 = at * RECORD_WORDS + W_INLINE;
    // Whole words: the inline ones as u32 loads (little-endian: byte order kept), a long key's
    // next ones from its arena bytes (buf[from + i] is its byte i, i >= INLINE).
    const whole = n & ~3;
    const inline = n > INLINE ? INLINE : whole;
    let buf = EMPTY_BYTES;
    let from = 0;
    if (n > INLINE) {
      const keyAt = this.keyAtOf(page, at);
      const chunk = Math.floor(keyAt / KEYDIR_ARENA_CHUNK_BYTES);
      buf = this.arena[chunk]!;
      from = keyAt - chunk * KEYDIR_ARENA_CHUNK_BYTES - INLINE;
    }
    let v0 = K0;
    let v1 = K1;
    let v2 = V2;
    let v3 = V3;
    for (let i = 0; i < whole; i += 4) {
      const m =
        i < inline
          ? words[w0 + (i >>> 2)]!
          : buf[from + i]! |
            (buf[from + i + 1]! << 8) |
            (buf[from + i + 2]! << 16) |
            (buf[from + i + 3]! << 24);
      v3 ^= m;
      // A SipRound on 32-bit words (rotations 5, 16, 8, 7, 13, 16).
      v0 = (v0 + v1) | 0;
      v1 = ((v1 << 5) | (v1 >>> 27)) ^ v0;
      v0 = (v0 << 16) | (v0 >>> 16);
      v2 = (v2 + v3) | 0;
      v3 = ((v3 << 8) | (v3 >>> 24)) ^ v2;
      v0 = (v0 + v3) | 0;
      v3 = ((v3 << 7) | (v3 >>> 25)) ^ v0;
      v2 = (v2 + v1) | 0;
      v1 = ((v1 << 13) | (v1 >>> 19)) ^ v2;
      v2 = (v2 << 16) | (v2 >>> 16);
      v0 ^= m;
    }
    // The tail: a short key's is the low bytes of the next inline word, the rest of it zero-padded
    // or not (masked); a long key's is in the arena.
    let t = 0;
    if (n <= INLINE) {
      if (whole < n) t = words[w0 + (whole >>> 2)]! & ((1 << (8 * (n - whole))) - 1);
    } else for (let i = n - 1; i >= whole; i--) t = (t << 8) | buf[from + i]!;
    return sipFinish(v0, v1, v2, v3, (n << 24) | t);
  }

  /** Sets the width of the buckets' slot field (the rest holds the tag); the caller rebuilds a non-empty table. */
  private setSlotBits(bits: number): void {
    this.slotBits = bits;
    this.slotMask = bits >= 31 ? 0x7fffffff : (1 << bits) - 1;
    this.tagMask = ~this.slotMask;
  }

  segmentOf(slot: number): number {
    return (
      this.pages[slot >>> PAGE_SHIFT]![(slot & PAGE_MASK) * RECORD_WORDS + W_SEGMENT_KEYLEN]! & SEGMENT_MASK
    );
  }

  positionOf(slot: number): number {
    return this.pages[slot >>> PAGE_SHIFT]![(slot & PAGE_MASK) * RECORD_WORDS + W_POSITION]!;
  }

  valueLengthOf(slot: number): number {
    return (
      this.pages[slot >>> PAGE_SHIFT]![(slot & PAGE_MASK) * RECORD_WORDS + W_VALUE_LENGTH]! & LENGTH_MASK
    );
  }

  /** Whether the key at `slot` has an expiry (expiresAtOf needs the key string only then). */
  hasExpiry(slot: number): boolean {
    return (
      (this.pages[slot >>> PAGE_SHIFT]![(slot & PAGE_MASK) * RECORD_WORDS + W_VALUE_LENGTH]! & HAS_EXPIRY) !==
      0
    );
  }

  expiresAtOf(slot: number, key: string): number {
    const l = this.pages[slot >>> PAGE_SHIFT]![(slot & PAGE_MASK) * RECORD_WORDS + W_VALUE_LENGTH]!;
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

  /** Points `key` at a record; returns the slot. The old location is left in `prev*`. */
  set(key: string, segment: number, position: number, valueLength: number, expiresAt: number): number {
    return this.setHashed(hashOf(key), key, segment, position, valueLength, expiresAt);
  }

  /** `set` of a key whose hash `h` the caller has (`warmKeys` left it in `warmedHashes`): hashed once. */
  setHashed(
    h: number,
    key: string,
    segment: number,
    position: number,
    valueLength: number,
    expiresAt: number,
  ): number {
    if (this.steps) this.rehashStep();
    const t = this.table;
    const mask = this.mask;
    const tag = h & this.tagMask;
    let i = h & mask;
    for (; ; i = (i + 1) & mask) {
      const e = t[i]!;
      if (e === 0) break;
      if ((e & this.tagMask) !== tag) continue;
      const s = (e & this.slotMask) - 1;
      if (this.keyEquals(s, key)) {
        this.notePrev(s, key);
        this.write(s, key, segment, position, valueLength, expiresAt);
        return s;
      }
    }
    if (this.old !== undefined) {
      const s = this.slotInOld(this.oldBucket(h, key));
      if (s >= 0) {
        this.notePrev(s, key);
        this.write(s, key, segment, position, valueLength, expiresAt);
        return s;
      }
    }
    this.clearPrev();
    const s = this.allocSlot(key.length);
    this.storeKey(key, s);
    this.insert(i, h, s, key, segment, position, valueLength, expiresAt);
    return s;
  }

  /** Removes `key`; returns whether it was there. */
  delete(key: string): boolean {
    if (this.steps) this.rehashStep();
    const h = hashOf(key);
    const t = this.table;
    const mask = this.mask;
    const tag = h & this.tagMask;
    let i = h & mask;
    let s = -1;
    for (; ; i = (i + 1) & mask) {
      const e = t[i]!;
      if (e === 0) {
        s = this.old === undefined ? -1 : this.removeOld(this.oldBucket(h, key));
        if (s < 0) return false;
        break;
      }
      if ((e & this.tagMask) !== tag) continue;
      s = (e & this.slotMask) - 1;
      if (this.keyEquals(s, key)) {
        this.removeBucket(i);
        break;
      }
    }
    if (this.hasExpiry(s)) this.expiries.delete(key);
    this.freeSlot(s);
    return true;
  }

  // ---- keys given as bytes (the hint loader) ----------------------------------
  //
  // set and delete for a key held in a buffer (the latin1 string of those
  // bytes, as everywhere in the keydir), hashed by the caller with hashBytes.
  // No string is built unless the key carries an expiry (the expiry map is
  // keyed by string). Same table, same outcome as the string methods.

  /**
   * Reads the table buckets of a batch of hashes, so that the setBytes and
   * deleteBytes calls that follow find them in the CPU cache: the reads here
   * are independent of each other and their cache misses overlap, where each
   * set would otherwise wait for its own. A hint only: the outcome is the same
   * without it.
   */
  warm(hashes: Int32Array, n: number): void {
    const t = this.table;
    const mask = this.mask;
    let x = this.warmed;
    for (let j = 0; j < n; j++) x ^= t[hashes[j]! & mask]!;
    this.warmed = x;
  }

  /**
   * `warm` and then, for each hash whose bucket run holds an entry of that
   * hash's tag within KEYDIR_WARM_PROBES buckets, the first word of that
   * entry's slot record (which holds the key's length, inline bytes and
   * location), so that the lookups that follow (the server's GETs and SETs of
   * one received batch) find the table and the record in the CPU cache: the
   * batch's misses overlap, in two rounds, instead of each lookup waiting for
   * two in turn. A hint only: the outcome is the same without it.
   */
  warmRecords(hashes: Int32Array, n: number): void {
    this.warm(hashes, n);
    const t = this.table;
    const mask = this.mask;
    const pages = this.pages;
    const tagMask = this.tagMask;
    let x = this.warmed;
    for (let j = 0; j < n; j++) {
      const h = hashes[j]!;
      const tag = h & tagMask;
      let i = h & mask;
      for (let k = 0; k < KEYDIR_WARM_PROBES; k++, i = (i + 1) & mask) {
        const e = t[i]!;
        if (e === 0) break;
        if ((e & tagMask) === tag) {
          const s = (e & this.slotMask) - 1;
          const p = pages[s >>> PAGE_SHIFT]!;
          const b = (s & PAGE_MASK) * RECORD_WORDS;
          x ^= p[b]! ^ p[b + W_LAST]!;
          break;
        }
      }
    }
    this.warmed = x;
  }

  /** Hashes of the keys `warmKeys` was given last (grown as needed). */
  private warmHashes = new Int32Array(0);

  /** The hashes `warmKeys` computed, in its keys' order: `setHashed` takes them, so a batch hashes each key once. */
  get warmedHashes(): Int32Array {
    return this.warmHashes;
  }

  /**
   * `warmRecords` for keys given as strings (the writes of one `Store.batch`):
   * their buckets and records are read together, so the `set`s that follow
   * find them in the CPU cache instead of each waiting for its own misses.
   * A hint only: the outcome is the same without it.
   */
  warmKeys(keys: readonly string[], n: number): void {
    if (this.warmHashes.length < n) this.warmHashes = new Int32Array(Math.max(n, 2 * this.warmHashes.length));
    const hashes = this.warmHashes;
    for (let j = 0; j < n; j++) hashes[j] = hashOf(keys[j]!);
    this.warmRecords(hashes, n);
  }

  /** `set` of the key in buf[start, start + length) with hash h (hashBytes). */
  setBytes(
    h: number,
    buf: Buffer,
    start: number,
    length: number,
    segment: number,
    position: number,
    valueLength: number,
    expiresAt: number,
  ): number {
    if (this.steps) this.rehashStep();
    const t = this.table;
    const mask = this.mask;
    const tag = h & this.tagMask;
    let i = h & mask;
    let s = -1;
    for (; ; i = (i + 1) & mask) {
      const e = t[i]!;
      if (e === 0) {
        if (this.old !== undefined) s = this.slotInOld(this.oldBucketBytes(h, buf, start, length));
        break;
      }
      if ((e & this.tagMask) !== tag) continue;
      s = (e & this.slotMask) - 1;
      if (this.keyEqualsBytes(s, buf, start, length)) break;
      s = -1;
    }
    if (s >= 0) {
      const key = expiresAt > 0 || this.hasExpiry(s) ? buf.toString('latin1', start, start + length) : '';
      this.notePrev(s, key);
      this.write(s, key, segment, position, valueLength, expiresAt);
      return s;
    }
    this.clearPrev();
    s = this.allocSlot(length);
    this.storeKeyBytes(buf, start, length, s);
    const key = expiresAt > 0 ? buf.toString('latin1', start, start + length) : '';
    this.insert(i, h, s, key, segment, position, valueLength, expiresAt);
    return s;
  }

  /**
   * `set` of the key whose `length` bytes are at `at` in `view` (the record
   * just appended: segment-log.ts), with hash h (hashView): the key is
   * compared and stored from there by 32-bit words instead of by chars.
   * `key`: its string, when the caller has one; without it (the server's
   * SET) a string is made from the stored bytes only for the expiries map.
   */
  setView(
    h: number,
    view: DataView,
    at: number,
    length: number,
    key: string | undefined,
    segment: number,
    position: number,
    valueLength: number,
    expiresAt: number,
  ): number {
    if (this.steps) this.rehashStep();
    const t = this.table;
    const mask = this.mask;
    const tag = h & this.tagMask;
    let i = h & mask;
    for (; ; i = (i + 1) & mask) {
      const e = t[i]!;
      if (e === 0) break;
      if ((e & this.tagMask) !== tag) continue;
      const s = (e & this.slotMask) - 1;
      this.values?.warmEntry(s);
      if (this.keyEqualsView(s, view, at, length)) {
        this.setFound(s, key, segment, position, valueLength, expiresAt);
        return s;
      }
    }
    if (this.old !== undefined) {
      const s = this.slotInOld(this.oldBucketView(h, view, at, length));
      if (s >= 0) {
        this.setFound(s, key, segment, position, valueLength, expiresAt);
        return s;
      }
    }
    this.clearPrev();
    const s = this.allocSlot(length);
    this.storeKeyView(view, at, length, s);
    const k = key ?? (expiresAt > 0 ? this.keyOf(s) : ''); // '': not read (no expiry, as setBytes)
    this.insert(i, h, s, k, segment, position, valueLength, expiresAt);
    return s;
  }

  /** setView's update of the slot `s` its key was found in (`key` as there). */
  private setFound(
    s: number,
    key: string | undefined,
    segment: number,
    position: number,
    valueLength: number,
    expiresAt: number,
  ): void {
    const k = key ?? (expiresAt > 0 || this.hasExpiry(s) ? this.keyOf(s) : ''); // '': not read
    this.notePrev(s, k);
    this.write(s, k, segment, position, valueLength, expiresAt);
  }

  /** The key of live slot `s`, as a fresh flat string (a caller that did not make one, when it needs one). */
  keyOfSlot(s: number): string {
    return this.keyOf(s);
  }

  /**
   * `delete` of the key in buf[start, start + length) with hash h (hashBytes).
   * When it was there, its old location is left in `prev*` (as `set` leaves it).
   */
  deleteBytes(h: number, buf: Buffer, start: number, length: number): boolean {
    if (this.steps) this.rehashStep();
    const t = this.table;
    const mask = this.mask;
    const tag = h & this.tagMask;
    let i = h & mask;
    let s = -1;
    for (; ; i = (i + 1) & mask) {
      const e = t[i]!;
      if (e === 0) {
        s = this.old === undefined ? -1 : this.removeOld(this.oldBucketBytes(h, buf, start, length));
        if (s < 0) return false;
        break;
      }
      if ((e & this.tagMask) !== tag) continue;
      s = (e & this.slotMask) - 1;
      if (this.keyEqualsBytes(s, buf, start, length)) {
        this.removeBucket(i);
        break;
      }
    }
    const key = this.hasExpiry(s) ? buf.toString('latin1', start, start + length) : '';
    this.notePrev(s, key);
    if (key !== '') this.expiries.delete(key);
    this.freeSlot(s);
    return true;
  }

  /** Leaves the location at slot `s` in `prev*`; `key` is read only when the entry has an expiry. */
  private notePrev(s: number, key: string): void {
    const p = this.pages[s >>> PAGE_SHIFT]!;
    const b = (s & PAGE_MASK) * RECORD_WORDS;
    const l = p[b + W_VALUE_LENGTH]!;
    this.prevSegment = p[b + W_SEGMENT_KEYLEN]! & SEGMENT_MASK;
    this.prevPosition = p[b + W_POSITION]!;
    this.prevValueLength = l & LENGTH_MASK;
    this.prevExpiresAt = (l & HAS_EXPIRY) === 0 ? 0 : (this.expiries.get(key) ?? 0);
  }

  /** `prev*` for a key that was not there. */
  private clearPrev(): void {
    this.prevSegment = -1;
    this.prevPosition = 0;
    this.prevValueLength = 0;
    this.prevExpiresAt = 0;
  }

  /** Puts new slot `s` (key already stored) into free bucket `i` with hash `h`, writes its entry, grows if due. */
  private insert(
    i: number,
    h: number,
    s: number,
    key: string,
    segment: number,
    position: number,
    valueLength: number,
    expiresAt: number,
  ): void {
    this.table[i] = (h & this.tagMask) | (s + 1);
    if (this.old !== undefined && s >= this.moveSlot && s < this.endSlot) this.noteNewInRange(s);
    // A new slot has no value in the small-value cache (freeSlot dropped it): no probe there.
    this.writeLocation(s, key, segment, position, valueLength, expiresAt);
    if (++this.count > (this.mask + 1) * KEYDIR_MAX_LOAD) this.grow();
    else if (this.count >= this.tablePrefaultAt) this.prefaultNextTable();
    // The next new slot's number + 1 must fit the buckets' slot field.
    if (this.nextSlot >= this.slotMask) this.widenSlots();
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
    this.place(s, segment, position);
    return true;
  }

  /**
   * `moveIfAt` by a slot the caller looked up earlier (the compactor, for
   * each record it kept), without hashing the key again. Same outcome: a slot
   * freed meanwhile, or taken by another key, never points at the old
   * (segment, position), which only the original key's record occupies.
   */
  moveSlotIfAt(
    s: number,
    fromSegment: number,
    fromPosition: number,
    segment: number,
    position: number,
  ): boolean {
    if (this.segmentOf(s) !== fromSegment || this.positionOf(s) !== fromPosition) return false;
    this.place(s, segment, position);
    return true;
  }

  /** Sets slot s's segment and position, keeping its key length. */
  private place(s: number, segment: number, position: number): void {
    const p = this.pages[s >>> PAGE_SHIFT]!;
    const b = (s & PAGE_MASK) * RECORD_WORDS;
    p[b + W_SEGMENT_KEYLEN] = (p[b + W_SEGMENT_KEYLEN]! & ~SEGMENT_MASK) | (segment & SEGMENT_MASK);
    p[b + W_POSITION] = position;
  }

  /** Every key with its slot, in slot order (roughly insertion order). Keys are decoded on the fly. */
  *entries(): IterableIterator<[string, number]> {
    for (let s = 0; s < this.nextSlot; s++) {
      if (this.segmentOf(s) === FREE) continue;
      yield [this.keyOf(s), s];
    }
  }

  /**
   * The hash table's shape, for tests and benchmarks: load, and the average
   * and longest number of buckets a lookup reads, for a key that is there
   * (its distance from its home bucket + 1) and for one that is not (from a
   * random home bucket to the next empty one). O(buckets).
   */
  probeStats(): { load: number; hitProbes: number; maxHitProbes: number; missProbes: number } {
    if (this.old !== undefined) this.moveSlots(this.endSlot); // the shape once the doubling is done
    const t = this.table;
    const mask = this.mask;
    const buckets = mask + 1;
    let hit = 0;
    let maxHit = 0;
    for (let i = 0; i < buckets; i++) {
      const e = t[i]!;
      if (e === 0) continue;
      const d = ((i - (this.hashOfSlot((e & this.slotMask) - 1) & mask)) & mask) + 1;
      hit += d;
      if (d > maxHit) maxHit = d;
    }
    // A miss from home h reads the run of full buckets from h, then one empty: a run of r full
    // buckets costs r+1, r, ..., 2 from its members and 1 from the empty bucket after it.
    let miss = 0;
    let start = 0;
    while (start < buckets && t[start] !== 0) start++; // an empty bucket exists (load < 1)
    let run = 0;
    for (let k = 1; k <= buckets; k++) {
      const i = (start + k) & mask;
      if (t[i] !== 0) run++;
      else {
        miss += ((run + 1) * (run + 2)) / 2;
        run = 0;
      }
    }
    return {
      load: this.count / buckets,
      hitProbes: this.count === 0 ? 0 : hit / this.count,
      maxHitProbes: maxHit,
      missProbes: miss / buckets,
    };
  }

  /** Keys with an expiry, with it (ms since epoch). */
  expiring(): IterableIterator<[string, number]> {
    return this.expiries.entries();
  }

  clear(): void {
    this.old = undefined;
    this.steps = false;
    this.newInRange = undefined;
    this.table = new Int32Array(KEYDIR_INITIAL_CAPACITY);
    this.mask = KEYDIR_INITIAL_CAPACITY - 1;
    this.count = 0;
    this.rehashes = 0;
    this.pages = [];
    this.bytePages = [];
    this.keyAtPages = undefined;
    this.keyAtHighPages = undefined;
    this.nextSlot = 0;
    this.freeSlots = [];
    this.arena = [];
    this.freeChunks = [];
    this.heldChunks = 0;
    this.arenaEnd = 0;
    this.chunkEnd = 0;
    this.deadKeyBytes = 0;
    this.evacuating = undefined;
    this.expiries.clear();
    this.values?.clear();
    this.recordPages.drop();
    this.nextTable.drop();
    this.armTablePrefault();
  }

  /**
   * Drops what is prefaulted ahead and unused yet (the idle memory reducer):
   * the record page (1.75 MiB) and the next table, if started (twice the
   * table), which the next new key starts again.
   */
  releaseSparePages(): void {
    this.recordPages.drop();
    if (this.nextTable.started) {
      this.nextTable.drop();
      this.tablePrefaultAt = this.count + 1;
    }
  }

  /** The key of a live slot, as a fresh flat string. */
  private keyOf(s: number): string {
    const page = s >>> PAGE_SHIFT;
    const at = s & PAGE_MASK;
    const n = this.keyLengthAt(page, at);
    const inlineAt = at * RECORD_BYTES + INLINE_AT;
    const bytes = this.bytePages[page]!;
    if (n <= INLINE) return bytes.toString('latin1', inlineAt, inlineAt + n);
    const key = Buffer.allocUnsafe(n);
    bytes.copy(key, 0, inlineAt, inlineAt + INLINE);
    const keyAt = this.keyAtOf(page, at);
    const chunk = Math.floor(keyAt / KEYDIR_ARENA_CHUNK_BYTES);
    const from = keyAt - chunk * KEYDIR_ARENA_CHUNK_BYTES;
    this.arena[chunk]!.copy(key, INLINE, from, from + n - INLINE);
    return key.toString('latin1');
  }

  /** The key length of the slot at (page, at). */
  private keyLengthAt(page: number, at: number): number {
    return this.pages[page]![at * RECORD_WORDS + W_SEGMENT_KEYLEN]! >>> KEYLEN_SHIFT;
  }

  /** Sets the key length of the slot at (page, at), keeping its segment. */
  private setKeyLength(page: number, at: number, n: number): void {
    const p = this.pages[page]!;
    const b = at * RECORD_WORDS;
    p[b + W_SEGMENT_KEYLEN] = (p[b + W_SEGMENT_KEYLEN]! & SEGMENT_MASK) | (n << KEYLEN_SHIFT);
  }

  /** Empties bucket i (backward-shift deletion: later members of its probe run move into the hole). */
  private removeBucket(i: number): void {
    const t = this.table;
    const mask = this.mask;
    for (let j = (i + 1) & mask; ; j = (j + 1) & mask) {
      const e = t[j]!;
      if (e === 0) break;
      const home = this.hashOfSlot((e & this.slotMask) - 1) & mask;
      // Move j into the hole at i unless its home lies cyclically in (i, j].
      if (i <= j ? home <= i || home > j : home <= i && home > j) {
        t[i] = e;
        i = j;
      }
    }
    t[i] = 0;
    this.count--;
  }

  /** Returns slot s, already out of the table (its expiry too), to the free list; it keeps its key bytes for reuse. */
  private freeSlot(s: number): void {
    this.values?.drop(s);
    const p = this.pages[s >>> PAGE_SHIFT]!;
    const b = (s & PAGE_MASK) * RECORD_WORDS;
    p[b + W_VALUE_LENGTH] = 0;
    p[b + W_SEGMENT_KEYLEN] = (p[b + W_SEGMENT_KEYLEN]! & ~SEGMENT_MASK) | FREE;
    this.freeSlots.push(s);
  }

  private keyEqualsBytes(s: number, buf: Buffer, start: number, n: number): boolean {
    const page = s >>> PAGE_SHIFT;
    const at = s & PAGE_MASK;
    if (this.keyLengthAt(page, at) !== n) return false;
    const bytes = this.bytePages[page]!;
    const inlineAt = at * RECORD_BYTES + INLINE_AT;
    const m = Math.min(n, INLINE);
    for (let i = 0; i < m; i++) if (bytes[inlineAt + i] !== buf[start + i]) return false;
    if (n <= INLINE) return true;
    const keyAt = this.keyAtOf(page, at);
    const chunk = Math.floor(keyAt / KEYDIR_ARENA_CHUNK_BYTES);
    const rest = this.arena[chunk]!;
    const from = keyAt - chunk * KEYDIR_ARENA_CHUNK_BYTES - INLINE;
    for (let i = INLINE; i < n; i++) if (rest[from + i] !== buf[start + i]) return false;
    return true;
  }

  /** keyEqualsBytes of the key at `at` in `view`: the inline bytes compared as 32-bit words. */
  private keyEqualsView(s: number, view: DataView, at: number, n: number): boolean {
    const page = s >>> PAGE_SHIFT;
    const slotAt = s & PAGE_MASK;
    if (this.keyLengthAt(page, slotAt) !== n) return false;
    const words = this.pages[page]!;
    const w0 = slotAt * RECORD_WORDS + W_INLINE;
    const m = Math.min(n, INLINE);
    let i = 0;
    for (; i + 4 <= m; i += 4) if ((words[w0 + (i >>> 2)]! | 0) !== view.getInt32(at + i, true)) return false;
    const bytes = this.bytePages[page]!;
    const inlineAt = slotAt * RECORD_BYTES + INLINE_AT;
    for (; i < m; i++) if (bytes[inlineAt + i] !== view.getUint8(at + i)) return false;
    if (n <= INLINE) return true;
    const keyAt = this.keyAtOf(page, slotAt);
    const chunk = Math.floor(keyAt / KEYDIR_ARENA_CHUNK_BYTES);
    const rest = this.arena[chunk]!;
    const from = keyAt - chunk * KEYDIR_ARENA_CHUNK_BYTES - INLINE;
    for (let j = INLINE; j < n; j++) if (rest[from + j] !== view.getUint8(at + j)) return false;
    return true;
  }

  private keyEquals(s: number, key: string): boolean {
    const page = s >>> PAGE_SHIFT;
    const at = s & PAGE_MASK;
    const n = key.length;
    if (this.keyLengthAt(page, at) !== n) return false;
    const bytes = this.bytePages[page]!;
    const inlineAt = at * RECORD_BYTES + INLINE_AT;
    const m = Math.min(n, INLINE);
    for (let i = 0; i < m; i++) if (bytes[inlineAt + i] !== key.charCodeAt(i)) return false;
    if (n <= INLINE) return true;
    const keyAt = this.keyAtOf(page, at);
    const chunk = Math.floor(keyAt / KEYDIR_ARENA_CHUNK_BYTES);
    const rest = this.arena[chunk]!;
    const from = keyAt - chunk * KEYDIR_ARENA_CHUNK_BYTES - INLINE;
    for (let i = INLINE; i < n; i++) if (rest[from + i] !== key.charCodeAt(i)) return false;
    return true;
  }

  /** Points slot s at a new location (and expiry), dropping the value the small-value cache held for it. */
  private write(
    s: number,
    key: string,
    segment: number,
    position: number,
    valueLength: number,
    expiresAt: number,
  ): void {
    this.values?.drop(s);
    this.writeLocation(s, key, segment, position, valueLength, expiresAt);
  }

  /** `write` without the small-value cache's drop: for a slot that holds no cached value. */
  private writeLocation(
    s: number,
    key: string,
    segment: number,
    position: number,
    valueLength: number,
    expiresAt: number,
  ): void {
    const p = this.pages[s >>> PAGE_SHIFT]!;
    const b = (s & PAGE_MASK) * RECORD_WORDS;
    p[b + W_SEGMENT_KEYLEN] = (p[b + W_SEGMENT_KEYLEN]! & ~SEGMENT_MASK) | (segment & SEGMENT_MASK);
    p[b + W_POSITION] = position;
    if (expiresAt > 0) {
      p[b + W_VALUE_LENGTH] = (valueLength | HAS_EXPIRY) >>> 0;
      this.expiries.set(key, expiresAt);
    } else {
      if (p[b + W_VALUE_LENGTH]! & HAS_EXPIRY) this.expiries.delete(key);
      p[b + W_VALUE_LENGTH] = valueLength;
    }
  }

  /**
   * A slot for a new key of n bytes, with room in the arena at its keyAt for
   * the bytes past the inline ones (the caller stores them): a freed slot
   * (reusing its arena bytes if the key's fit) or a new one.
   */
  private allocSlot(n: number): number {
    const need = n > INLINE ? n - INLINE : 0;
    let s = this.freeSlots.pop();
    if (s !== undefined) {
      const page = s >>> PAGE_SHIFT;
      const at = s & PAGE_MASK;
      const old = this.keyLengthAt(page, at);
      // Bytes in a chunk being evacuated are not its to reuse (the chunk goes when the evacuation ends).
      const had = old > INLINE && !this.inEvacuatedChunk(this.keyAtOf(page, at)) ? old - INLINE : 0;
      if (need <= had) {
        this.deadKeyBytes += had - need;
      } else {
        this.deadKeyBytes += had;
        this.setKeyAt(page, at, this.appendSpace(need));
      }
      this.setKeyLength(page, at, n);
      return s;
    }
    s = this.nextSlot++;
    if ((s & PAGE_MASK) === 0) {
      const bytes = this.recordPages.take();
      this.pages.push(new Uint32Array(bytes.buffer, bytes.byteOffset, KEYDIR_PAGE_SLOTS * RECORD_WORDS));
      this.bytePages.push(bytes);
      this.keyAtPages?.push(new Uint32Array(KEYDIR_PAGE_SLOTS));
      this.keyAtHighPages?.push(new Uint8Array(KEYDIR_PAGE_SLOTS));
    }
    const page = s >>> PAGE_SHIFT;
    const at = s & PAGE_MASK;
    if (need > 0) this.setKeyAt(page, at, this.appendSpace(need));
    this.setKeyLength(page, at, n);
    return s;
  }

  /** The arena offset of the bytes past the inline ones of the key at (page, at). */
  private keyAtOf(page: number, at: number): number {
    const low = this.keyAtPages![page]![at]!;
    const high = this.keyAtHighPages;
    return high === undefined ? low : low + high[page]![at]! * 2 ** 32;
  }

  private setKeyAt(page: number, at: number, keyAt: number): void {
    if (this.keyAtPages === undefined)
      this.keyAtPages = this.pages.map(() => new Uint32Array(KEYDIR_PAGE_SLOTS));
    this.keyAtPages[page]![at] = keyAt >>> 0;
    if (keyAt >= 2 ** 32 && this.keyAtHighPages === undefined)
      this.keyAtHighPages = this.pages.map(() => new Uint8Array(KEYDIR_PAGE_SLOTS));
    if (this.keyAtHighPages !== undefined) this.keyAtHighPages[page]![at] = Math.floor(keyAt / 2 ** 32);
  }

  /** Stores `key` as slot s's key: its first bytes inline, the rest at the slot's keyAt. */
  private storeKey(key: string, s: number): void {
    const page = s >>> PAGE_SHIFT;
    const at = s & PAGE_MASK;
    const n = key.length;
    const inline = this.bytePages[page]!;
    const inlineAt = at * RECORD_BYTES + INLINE_AT;
    const m = Math.min(n, INLINE);
    for (let i = 0; i < m; i++) inline[inlineAt + i] = key.charCodeAt(i);
    if (n <= INLINE) return;
    const keyAt = this.keyAtOf(page, at);
    const chunk = Math.floor(keyAt / KEYDIR_ARENA_CHUNK_BYTES);
    const bytes = this.arena[chunk]!;
    const from = keyAt - chunk * KEYDIR_ARENA_CHUNK_BYTES - INLINE;
    for (let i = INLINE; i < n; i++) bytes[from + i] = key.charCodeAt(i);
  }

  /** storeKey of the key at `at` in `view`: the inline bytes stored as 32-bit words. */
  private storeKeyView(view: DataView, at: number, n: number, s: number): void {
    const page = s >>> PAGE_SHIFT;
    const slotAt = s & PAGE_MASK;
    const words = this.pages[page]!;
    const w0 = slotAt * RECORD_WORDS + W_INLINE;
    const m = Math.min(n, INLINE);
    let i = 0;
    for (; i + 4 <= m; i += 4) words[w0 + (i >>> 2)] = view.getUint32(at + i, true);
    const bytes = this.bytePages[page]!;
    const inlineAt = slotAt * RECORD_BYTES + INLINE_AT;
    for (; i < m; i++) bytes[inlineAt + i] = view.getUint8(at + i);
    if (n <= INLINE) return;
    const keyAt = this.keyAtOf(page, slotAt);
    const chunk = Math.floor(keyAt / KEYDIR_ARENA_CHUNK_BYTES);
    const rest = this.arena[chunk]!;
    const from = keyAt - chunk * KEYDIR_ARENA_CHUNK_BYTES - INLINE;
    for (let j = INLINE; j < n; j++) rest[from + j] = view.getUint8(at + j);
  }

  /** storeKey of the key in buf[start, start + n). */
  private storeKeyBytes(buf: Buffer, start: number, n: number, s: number): void {
    const page = s >>> PAGE_SHIFT;
    const at = s & PAGE_MASK;
    const inline = this.bytePages[page]!;
    const inlineAt = at * RECORD_BYTES + INLINE_AT;
    const m = Math.min(n, INLINE);
    for (let i = 0; i < m; i++) inline[inlineAt + i] = buf[start + i]!;
    if (n <= INLINE) return;
    const keyAt = this.keyAtOf(page, at);
    const chunk = Math.floor(keyAt / KEYDIR_ARENA_CHUNK_BYTES);
    const bytes = this.arena[chunk]!;
    const from = keyAt - chunk * KEYDIR_ARENA_CHUNK_BYTES;
    // A JS loop beats the native copy on short keys (the common case).
    if (n - INLINE <= KEY_COPY_LOOP_BYTES)
      for (let i = INLINE; i < n; i++) bytes[from + i - INLINE] = buf[start + i]!;
    else buf.copy(bytes, from, start + INLINE, start + n);
  }

  /** Reserves n bytes at the end of the arena (never straddling two chunks); returns where. */
  private appendSpace(n: number): number {
    if (
      this.evacuating === undefined &&
      this.deadKeyBytes > KEYDIR_ARENA_CHUNK_BYTES &&
      this.deadKeyBytes > (this.heldChunks * KEYDIR_ARENA_CHUNK_BYTES) / 2
    )
      this.startEvacuation();
    if (this.chunkEnd - this.arenaEnd < n) {
      this.deadKeyBytes += this.chunkEnd - this.arenaEnd;
      this.openChunk();
    }
    const keyAt = this.arenaEnd;
    this.arenaEnd += n;
    return keyAt;
  }

  /** Appends go to a new chunk from now on, at the lowest-numbered free index if there is one. */
  private openChunk(): void {
    const index = this.freeChunks.pop() ?? this.arena.length;
    this.arena[index] = Buffer.allocUnsafeSlow(KEYDIR_ARENA_CHUNK_BYTES);
    this.heldChunks++;
    this.arenaEnd = index * KEYDIR_ARENA_CHUNK_BYTES;
    this.chunkEnd = this.arenaEnd + KEYDIR_ARENA_CHUNK_BYTES;
  }

  /**
   * Starts emptying every chunk held now (half or more of their bytes are
   * dead): from here on keys are appended to new chunks, and evacuateSlots
   * copies the live keys still in the old ones over, a step at a time, so no
   * single call rewrites the arena (in one call it held the event loop
   * ~10 ms at 2M 45-byte keys). Rewritten in one go, the arena kept the
   * process's memory in step with its live keys; so does this, once done.
   */
  private startEvacuation(): void {
    const flags = new Uint8Array(this.arena.length);
    for (let i = 0; i < this.arena.length; i++) if (this.arena[i] !== undefined) flags[i] = 1;
    this.evacuating = flags;
    this.evacuateSlot = 0;
    this.evacuateEnd = this.nextSlot;
    this.deadKeyBytes = 0; // of the chunks kept: none yet
    this.chunkEnd = this.arenaEnd; // the next append opens a chunk of its own
    this.steps = true;
  }

  /** Whether arena offset keyAt is in a chunk being evacuated. */
  private inEvacuatedChunk(keyAt: number): boolean {
    const flags = this.evacuating;
    return flags !== undefined && flags[Math.floor(keyAt / KEYDIR_ARENA_CHUNK_BYTES)] === 1;
  }

  /**
   * Looks at the next `n` slots of the evacuation under way: a live key with
   * bytes in a chunk being emptied has them copied to the end of the arena;
   * a free slot with bytes there forgets them (key length 0: a reuse
   * appends). Past the last slot, the emptied chunks are dropped and their
   * indices freed: no slot refers to them any more.
   */
  private evacuateSlots(n: number): void {
    const end = Math.min(this.evacuateEnd, this.evacuateSlot + n);
    for (let s = this.evacuateSlot; s < end; s++) {
      const page = s >>> PAGE_SHIFT;
      const at = s & PAGE_MASK;
      const len = this.keyLengthAt(page, at);
      if (len <= INLINE) continue; // all inline
      const keyAt = this.keyAtOf(page, at);
      if (!this.inEvacuatedChunk(keyAt)) continue; // stored again since the evacuation began
      if (this.segmentOf(s) === FREE) {
        this.setKeyLength(page, at, 0);
        continue;
      }
      const bytes = len - INLINE;
      const to = this.appendSpace(bytes);
      const chunk = Math.floor(keyAt / KEYDIR_ARENA_CHUNK_BYTES);
      const from = keyAt - chunk * KEYDIR_ARENA_CHUNK_BYTES;
      const toChunk = Math.floor(to / KEYDIR_ARENA_CHUNK_BYTES);
      this.arena[chunk]!.copy(
        this.arena[toChunk]!,
        to - toChunk * KEYDIR_ARENA_CHUNK_BYTES,
        from,
        from + bytes,
      );
      this.setKeyAt(page, at, to);
    }
    this.evacuateSlot = end;
    if (end === this.evacuateEnd) this.endEvacuation();
  }

  private endEvacuation(): void {
    const flags = this.evacuating!;
    for (let i = flags.length - 1; i >= 0; i--) {
      if (flags[i] !== 1) continue;
      this.arena[i] = undefined;
      this.heldChunks--;
      this.freeChunks.push(i);
    }
    this.freeChunks.sort((a, b) => b - a); // pop() takes the lowest
    this.evacuating = undefined;
    this.steps = this.old !== undefined;
  }

  /**
   * Doubles the table, incrementally: an empty table twice the size takes
   * new keys from now on, and the old one's keys move over in rehashStep.
   * A doubling still under way is finished first (rehashStep's pace makes
   * that a no-op unless most slots are free).
   */
  private grow(): void {
    if (this.old !== undefined) this.moveSlots(this.endSlot);
    this.rehashes++;
    this.old = this.table;
    this.oldMask = this.mask;
    this.moveSlot = 0;
    this.endSlot = this.nextSlot;
    this.sinceMove = 0;
    this.steps = true;
    const capacity = 2 * (this.mask + 1);
    const next = this.nextTable.take();
    if (next !== undefined && next.length === 4 * capacity) {
      this.prefaultedTables++;
      // A tableBuffer (prefaultNextTable): a plain ArrayBuffer or a WebAssembly memory's.
      this.table = new Int32Array(next.buffer as ArrayBuffer, next.byteOffset, capacity);
    } else {
      this.table = tableInt32Array(capacity);
    }
    this.mask = capacity - 1;
    this.armTablePrefault();
  }

  /**
   * Sets the key count at which the table after the current one starts
   * being prefaulted: KEYDIR_TABLE_PREFAULT_FROM of the count that doubles
   * it, when that table is big enough to be worth a fill. A table of
   * another size (a rebuild, clear) forgets one prefaulted for the old size.
   */
  private armTablePrefault(): void {
    const capacity = this.mask + 1;
    this.tablePrefaultAt =
      8 * capacity >= KEYDIR_TABLE_PREFAULT_MIN_BYTES
        ? Math.max(this.count + 1, Math.ceil(capacity * KEYDIR_MAX_LOAD * KEYDIR_TABLE_PREFAULT_FROM))
        : Number.POSITIVE_INFINITY;
  }

  /** Starts prefaulting the table the next doubling takes (twice the current one). */
  private prefaultNextTable(): void {
    this.tablePrefaultAt = Number.POSITIVE_INFINITY;
    const bytes = 8 * (this.mask + 1);
    this.nextTable.start(Buffer.from(tableBuffer(bytes), 0, bytes));
  }

  /**
   * Moves keys of a doubling, and of an arena evacuation, under way for
   * about `ms` milliseconds (the store's timer, for a keydir that sees few
   * calls); false once neither is.
   */
  rehashFor(ms: number): boolean {
    const until = performance.now() + ms;
    while (this.steps && performance.now() < until) {
      if (this.old !== undefined) this.moveSlots(8 * KEYDIR_REHASH_SLOTS);
      else this.evacuateSlots(8 * KEYDIR_REHASH_SLOTS);
    }
    return this.steps;
  }

  /** One step of a doubling or an arena evacuation under way (both if both are), every KEYDIR_REHASH_EVERY calls. */
  private rehashStep(): void {
    if (++this.sinceMove < KEYDIR_REHASH_EVERY) return;
    this.sinceMove = 0;
    if (this.old !== undefined) this.moveSlots(KEYDIR_REHASH_SLOTS);
    if (this.evacuating !== undefined) this.evacuateSlots(KEYDIR_REHASH_SLOTS);
  }

  /**
   * Moves the keys of the next `n` slots to the new table (placeSlots);
   * drops the old table once past the last. Their entries in the old table
   * stay, stale: lookups there skip slots below moveSlot.
   */
  private moveSlots(n: number): void {
    const end = Math.min(this.endSlot, this.moveSlot + n);
    this.placeSlots(this.table, this.mask, this.moveSlot, end, this.newInRange);
    this.moveSlot = end;
    if (end === this.endSlot) {
      this.old = undefined;
      this.newInRange = undefined;
      this.steps = this.evacuating !== undefined;
    }
  }

  /** A new key took slot s, which the doubling under way has yet to move: it is in the new table already. */
  private noteNewInRange(s: number): void {
    if (this.newInRange === undefined) this.newInRange = new Uint8Array((this.endSlot + 7) >>> 3);
    this.newInRange[s >>> 3]! |= 1 << (s & 7);
  }

  /**
   * What a bucket of the old table holds once its key was deleted there:
   * not empty (0), so that the probe runs through it stay whole, and no slot
   * (slot field 0), so that no key matches it.
   */
  private get movedMark(): number {
    return this.tagMask;
  }

  /** The bucket of `key` (hash h) in the old table, or -1 (a doubling is under way). */
  private oldBucket(h: number, key: string): number {
    const old = this.old!;
    const mask = this.oldMask;
    const tag = h & this.tagMask;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const e = old[i]!;
      if (e === 0) return -1;
      if ((e & this.tagMask) !== tag) continue;
      const s = (e & this.slotMask) - 1;
      if (s >= this.moveSlot && this.keyEquals(s, key)) return i; // below moveSlot: moved (stale), or MOVED (-1)
    }
  }

  /** oldBucket of the key in buf[start, start + length). */
  private oldBucketBytes(h: number, buf: Buffer, start: number, length: number): number {
    const old = this.old!;
    const mask = this.oldMask;
    const tag = h & this.tagMask;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const e = old[i]!;
      if (e === 0) return -1;
      if ((e & this.tagMask) !== tag) continue;
      const s = (e & this.slotMask) - 1;
      if (s >= this.moveSlot && this.keyEqualsBytes(s, buf, start, length)) return i;
    }
  }

  /** oldBucket of the key at `at` in `view` (setView, slotView). */
  private oldBucketView(h: number, view: DataView, at: number, length: number): number {
    const old = this.old!;
    const mask = this.oldMask;
    const tag = h & this.tagMask;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const e = old[i]!;
      if (e === 0) return -1;
      if ((e & this.tagMask) !== tag) continue;
      const s = (e & this.slotMask) - 1;
      if (s >= this.moveSlot && this.keyEqualsView(s, view, at, length)) return i;
    }
  }

  /** The slot in old-table bucket i, or -1 for i = -1. */
  private slotInOld(i: number): number {
    return i < 0 ? -1 : (this.old![i]! & this.slotMask) - 1;
  }

  /** Takes the key in old-table bucket i out of the table (a MOVED mark); its slot, or -1 for i = -1. */
  private removeOld(i: number): number {
    if (i < 0) return -1;
    const s = this.slotInOld(i);
    this.old![i] = this.movedMark;
    this.count--;
    return s;
  }

  /**
   * One bit more for the buckets' slot field (one less for the tag), and the
   * table rebuilt so: the slots have outgrown KEYDIR_SLOT_BITS.
   */
  private widenSlots(): void {
    if (this.slotBits >= 31) throw new KvError('INTERNAL', 'keydir: more than 2^31 - 2 keys');
    this.setSlotBits(this.slotBits + 1);
    this.rebuild(this.mask + 1);
  }

  /**
   * A table of `capacity` buckets (a power of two, above the load limit),
   * every live slot placed by its key's hash, recomputed from the key's
   * bytes (placeSlots); a slot is in the table exactly when it is not free.
   */
  private rebuild(capacity: number): void {
    if (this.count > 0) this.rehashes++;
    this.old = undefined; // every live slot is placed below, wherever its bucket was
    this.newInRange = undefined;
    this.steps = this.evacuating !== undefined;
    const t = tableInt32Array(capacity);
    this.placeSlots(t, capacity - 1, 0, this.nextSlot, undefined);
    this.table = t;
    this.mask = capacity - 1;
    this.nextTable.drop();
    this.armTablePrefault();
  }

  /**
   * Places the live slots of [from, to) in table `t` (mask `mask`) by their
   * keys' hashes, except those whose bit is set in `skip`. Slots are read in
   * order (one pass over the record pages, not a random read per entry),
   * and a batch is hashed before any is placed: the placing loop's cache
   * misses (random buckets) overlap instead of each waiting behind a hash.
   */
  private placeSlots(
    t: Int32Array,
    mask: number,
    from: number,
    to: number,
    skip: Uint8Array | undefined,
  ): void {
    const tagMask = this.tagMask;
    const pages = this.pages;
    for (let at = from; at < to; at += REBUILD_BATCH) {
      const batchEnd = Math.min(to, at + REBUILD_BATCH);
      let n = 0;
      for (let s = at; s < batchEnd; s++) {
        const p = pages[s >>> PAGE_SHIFT]!;
        if ((p[(s & PAGE_MASK) * RECORD_WORDS + W_SEGMENT_KEYLEN]! & SEGMENT_MASK) === FREE) continue;
        if (skip !== undefined && (skip[s >>> 3]! & (1 << (s & 7))) !== 0) continue;
        BATCH_SLOTS[n] = s;
        BATCH_HASHES[n++] = this.hashOfSlot(s);
      }
      for (let j = 0; j < n; j++) {
        const h = BATCH_HASHES[j]!;
        let i = h & mask;
        while (t[i] !== 0) i = (i + 1) & mask;
        t[i] = (h & tagMask) | (BATCH_SLOTS[j]! + 1);
      }
    }
  }
}
