/**
 * The small-value cache: values of at most SLOT_CACHE_MAX_VALUE_BYTES, kept
 * in one byte arena and found by the keydir slot the lookup already found, so
 * a GET of a hot small value costs no system call, no key string, no Map and
 * no object per entry (issue 15). lru-cache (store.ts) keeps larger values.
 *
 *   arena  one Buffer of `capacity` bytes (a multiple of 8) used as a ring:
 *          entries are appended at `head` and leave at `tail`.
 *            entry   slot i32 · word u32 · value bytes · padding to 8
 *            word    value length << 1 | referenced bit (set by a hit)
 *            slot    ≥ 0 the keydir slot; DROPPED (-1): invalidated, its bytes
 *                    come back when the tail passes; PAD (-2): the unused end
 *                    of the arena before the ring wrapped to 0
 *   table  open addressing (linear probing, backward-shift deletion) of
 *          [slot + 1, entry offset] Int32 pairs, 0 = empty, load ≤ 1/2
 *
 * Memory: the arena is reserved whole, but a page costs RSS only once the
 * ring's head has reached it, so the cache takes what it holds, not its
 * capacity, until it is full.
 *
 * Prefaulting (prefault.ts: a first write to a page costs the event loop
 * 11-16 µs on the benchmark VM): in a cache of at least
 * SLOT_CACHE_PREFAULT_MIN_BYTES, during the first lap of a new arena (not
 * one a shed made) the thread pool writes the arena ahead of the head (at
 * least a piece past it, up to SLOT_CACHE_PREFAULT_AHEAD_BYTES plus a piece),
 * one PREFAULT_PIECE_BYTES range at a time; and at any time the table's next
 * size before it is needed (zero-filled when taken). The range a fill is writing is fenced:
 * the ring never writes there while it runs. A head that catches up with it
 * (the pool lags, or a synchronous burst gives the fill's completion no
 * event-loop turn) steps over it with a padding entry, as at the arena's
 * end, so every value is still cached; the padding is reclaimed when the
 * tail passes. After a lap the arena is written whole and no fill starts.
 *
 * Filling: a read that misses caches its value (`put`). A write caches its
 * value while the cache is `warm` (`putWritten`): it has never evicted, so a
 * GET after a bulk load that fits is a hit. A write that would have to evict,
 * or take the values held past `writeFillBytes` (half the capacity,
 * SLOT_CACHE_WRITE_FILL_DIVISOR), ends that: the data written likely
 * outgrow the cache (filling the rest only to shed it is a bulk load's
 * cost, not a reader's gain), so the values only written
 * (never read: CLOCK's bit unset) are shed, the arena is replaced by one
 * holding just the read ones (the old one's pages go back to the OS when it
 * is collected), and from then on a write refreshes only a value the cache
 * holds (takeDropped, refill). A 1M-key load into the default 32 MiB cache
 * so leaves it nearly empty instead of full of the last keys written.
 *
 * Eviction is CLOCK over the ring: to make room at `head`, the entry at
 * `tail` is examined. A dropped entry or the padding is reclaimed; a
 * referenced one loses its bit and moves to `head` (the free space is
 * [head, tail), so the copy never overwrites a live byte), keeping its
 * place in the cache for another lap; any other is evicted. A lap clears
 * every bit, so making room always ends.
 *
 * Correctness rests on one rule: whoever changes what a keydir slot points
 * at drops the slot here first. The keydir does so itself (Keydir.write and
 * freeSlot, clear), so sets, deletes, expiries, rollbacks, replicated
 * records and recovery invalidate whatever path they come from. A
 * compaction move (Keydir.moveIfAt / moveSlotIfAt) keeps the entry: the
 * record moved, its value did not. A truncation or resync reopens the
 * store, which starts with an empty cache.
 *
 * Single-threaded, like the keydir. Values are copied in; `get` copies one
 * out (the Buffer is the caller's), while `locate` gives the value's place
 * in `arena` for a caller that copies the bytes straight to where they go
 * (the server's GET reply): they stay valid only until the next put or
 * clear, which may move or overwrite them.
 */

import { randomBytes } from 'node:crypto';
import { copyWords } from './copy-words.js';
import {
  PREFAULT_PIECE_BYTES,
  SLOT_CACHE_INITIAL_TABLE,
  SLOT_CACHE_PREFAULT_AHEAD_BYTES,
  SLOT_CACHE_PREFAULT_MIN_BYTES,
  SLOT_CACHE_WRITE_FILL_DIVISOR,
} from './limits.js';
import { PrefaultAhead, prefault } from './prefault.js';
import { countUnwritten, tableBuffer, tableInt32Array, type UnwrittenShare, written } from './slabs.js';

const HEADER_BYTES = 8;
const DROPPED = -1;
const PAD = -2;
const REFERENCED = 1;
/** makeRoom's answer when the room would reach into the range a prefault fill is writing: the value is not cached. */
const FENCED = -2;
/** Table bytes from which the next table is prefaulted (smaller ones come from malloc's heap: few fresh pages). */
const PREFAULT_TABLE_MIN_BYTES = 128 * 1024;
/** Values up to this many bytes are copied by a JS loop, longer ones by Buffer.copy. */
const COPY_LOOP_BYTES = 64;
/**
 * Uint8Array's `set`, called on the arena: `this.arena.set` left a LoadIC
 * call of `set` in place's optimised code (~77 instructions per fill; the
 * same as encodeRecord's `buf.set`, record.ts).
 */
const setBytes = Uint8Array.prototype.set;

/**
 * The table's hash of a slot key (slot + 1), keyed per process: a xor with a
 * random word, a multiply by a random odd word, the high half folded into
 * the low, a second random odd multiply, and the top bits (32 - `shift`)
 * as the home bucket.
 *
 * Hash flooding (issue 15; ARCHITECTURE.md): slots are the keydir's
 * (allocated in order, freed ones reused last-in first-out), so a client
 * that writes on an otherwise idle server knows which slot each of its keys
 * took, and it chooses which slots the cache holds by reading them once a
 * bulk write has shed the write-filled values. Under the unkeyed Fibonacci
 * hash this replaced (`Math.imul(key, 0x9e3779b1) >>> shift`), 262,144 keys
 * written and the 16,382 whose hash was below 2^32/16 read put those in
 * the table's first sixteenth, one probe run: 7,168 probes per hit where
 * random slots take 1.4 (test/engine/slot-cache-flood.test.ts, smaller:
 * 960). Under random words the client cannot tell which slots share a
 * neighbourhood. A keyed multiply-shift alone (one random odd multiplier,
 * with or without the xor) is universal, but linear probing needs more:
 * on grids and strides of slots some draws of the multiplier gave 4-6.5
 * probes per hit (20 draws a set); with the fold and the second multiply
 * every set and draw gave ~1.5, as random slots do.
 */
const HOME_KEY = randomBytes(12);
const HOME_XOR = HOME_KEY.readInt32LE(0);
const HOME_MUL1 = HOME_KEY.readInt32LE(4) | 1;
const HOME_MUL2 = HOME_KEY.readInt32LE(8) | 1;

/** Bytes an entry of a value of `n` bytes takes in the arena. */
export function slotCacheEntryBytes(n: number): number {
  return (HEADER_BYTES + n + 7) & ~7;
}

export class SlotCache {
  /** Arena bytes (a multiple of 8). */
  readonly capacity: number;
  /** Largest value accepted, bytes. */
  readonly maxValueBytes: number;
  /** Bytes of values held past which a write-fill sheds instead (see the file header). */
  readonly writeFillBytes: number;
  hits = 0;
  misses = 0;
  /**
   * No value has been evicted since the cache was made or cleared: it still
   * has room for what is written, so the store fills it on every small write
   * (putWritten; a GET after a bulk load is a hit); once a write or a read
   * would evict, only writes of values it holds (takeDropped), so a write of a
   * cold key evicts nothing.
   */
  warm = true;
  /** Times the write-filled values were shed (putWritten found the cache full). */
  sheds = 0;

  /**
   * The ring's bytes; read-only outside this class, and a located value only
   * until the next put or clear (a shed replaces the Buffer).
   */
  arena: Buffer;
  /** Length of the value `locate` found last. */
  located = 0;
  private words: Int32Array;
  /** The arena's bytes as a DataView, for copyWords from a replica's write chunk (refillFrom). */
  private view: DataView;
  private head = 0;
  private tail = 0;
  /** Bytes between tail and head: live, dropped and padding entries. */
  private used = 0;
  /** Bytes of live entries (header and padding included). */
  private liveBytes = 0;
  private count = 0;
  private table: Int32Array;
  /**
   * Arena bytes [0, touched) were written by the ring or by a prefault fill
   * (done or running), or lie in the gap the ring is writing before a fill;
   * the pages past it are not resident.
   */
  private touched = 0;
  /** `place` calls `reach` once the head passes this. */
  private reachAt = 0;
  /** The range [fenceFrom, fenceTo) a prefault fill is writing: the ring must not write there. fenceTo 0: none. */
  private fenceFrom = 0;
  private fenceTo = 0;
  /** Whether arena fills still start: a cache of SLOT_CACHE_PREFAULT_MIN_BYTES or more, before the ring's first wrap. */
  private prefaulting: boolean;
  /** The table's next size, prefaulted once the table is 3/8 full (see the file header). */
  private readonly nextTable = new PrefaultAhead(true);
  /** Values at which the next table is started (Infinity: too small, or started). */
  private tablePrefaultAt = Number.POSITIVE_INFINITY;
  /** Arena fills started, and times grow took a prefaulted table (tests). */
  arenaFills = 0;
  prefaultedGrows = 0;
  /** The arena's bytes past `touched`, counted as never written (slabs.ts `unwrittenBytes`). */
  private untouched: UnwrittenShare;
  private shift: number;
  private mask: number;
  /**
   * The hash's words (HOME_KEY), copied into the instance: a field load off
   * `this`, where each module-level constant cost a context load and a hole
   * check per call.
   */
  private readonly homeXor = HOME_XOR;
  private readonly homeMul1 = HOME_MUL1;
  private readonly homeMul2 = HOME_MUL2;

  /** `writeFillBytes`: see the field; tests give the capacity to reach a full ring by writes. */
  constructor(
    capacityBytes: number,
    maxValueBytes: number,
    writeFillBytes = Math.floor(capacityBytes / SLOT_CACHE_WRITE_FILL_DIVISOR),
  ) {
    this.capacity = capacityBytes & ~7;
    // An entry never takes more than an eighth of the arena: room is always found in one lap.
    this.maxValueBytes = Math.min(maxValueBytes, (this.capacity >>> 3) - HEADER_BYTES);
    this.writeFillBytes = writeFillBytes;
    // Untouched pages of the arena cost no memory: it is filled from the start on.
    this.arena = Buffer.allocUnsafeSlow(this.capacity);
    this.untouched = countUnwritten(this.arena.buffer, this.capacity);
    this.words = new Int32Array(this.arena.buffer, this.arena.byteOffset, this.capacity >>> 2);
    this.view = new DataView(this.arena.buffer, this.arena.byteOffset, this.capacity);
    this.table = new Int32Array(2 * SLOT_CACHE_INITIAL_TABLE);
    this.mask = SLOT_CACHE_INITIAL_TABLE - 1;
    this.shift = 32 - Math.log2(SLOT_CACHE_INITIAL_TABLE);
    this.prefaulting = this.capacity >= SLOT_CACHE_PREFAULT_MIN_BYTES;
  }

  /** Number of values held. */
  get size(): number {
    return this.count;
  }

  /** Arena bytes held by values (headers and padding included). */
  get bytes(): number {
    return this.liveBytes;
  }

  /** Whether a value of `n` bytes may be cached. */
  fits(n: number): boolean {
    return n <= this.maxValueBytes;
  }

  /**
   * Where the value cached for `slot` starts in `arena` (its length in
   * `located`), marked referenced; -1 if none. Counts a hit or a miss. The
   * bytes are valid until the next put or clear.
   */
  locate(slot: number): number {
    const at = this.find(slot);
    if (at < 0) {
      this.misses++;
      return -1;
    }
    this.hits++;
    const w = this.words;
    const i = (at >>> 2) + 1;
    const word = w[i]!;
    w[i] = word | REFERENCED;
    this.located = word >>> 1;
    return at + HEADER_BYTES;
  }

  /** A copy of the value cached for `slot` (marked referenced), or undefined. Counts a hit or a miss. */
  get(slot: number): Buffer | undefined {
    const from = this.locate(slot);
    if (from < 0) return undefined;
    const n = this.located;
    const out = Buffer.allocUnsafe(n);
    if (n <= COPY_LOOP_BYTES) {
      const a = this.arena;
      for (let j = 0; j < n; j++) out[j] = a[from + j]!;
    } else this.arena.copy(out, 0, from, from + n);
    return out;
  }

  /** Whether `slot` has a cached value (no hit counted, no bit set). */
  has(slot: number): boolean {
    return this.find(slot) >= 0;
  }

  /** Caches `value` for `slot` (replacing what it had). Values over maxValueBytes are not kept. */
  put(slot: number, value: Uint8Array): void {
    if (value.length > this.maxValueBytes) {
      this.drop(slot);
      return;
    }
    if (this.count > 0) this.drop(slot);
    this.putNew(slot, value);
  }

  /**
   * Caches the value a write just stored at `slot` (known to hold no value
   * here, at most maxValueBytes), while the cache is warm: if that needs an
   * eviction or takes the values held past writeFillBytes, the write-filled
   * values are shed instead (see the file header), and this one is kept only
   * if `hot` (it replaces a cached one).
   */
  putWritten(slot: number, value: Uint8Array, hot = false): void {
    const to = this.putWrittenTo(slot, value.length, hot);
    if (to >= 0) this.copyIn(value, to);
  }

  /** putWritten() of the `n` bytes at `from` in `src` (see refillFrom). */
  putWrittenFrom(slot: number, src: DataView, from: number, n: number): void {
    const to = this.putWrittenTo(slot, n, false);
    if (to >= 0) this.copyFrom(src, from, n, to);
  }

  /** putWritten's entry for an `n`-byte value: where its bytes go, -1 if it is not kept. */
  private putWrittenTo(slot: number, n: number, hot: boolean): number {
    const size = slotCacheEntryBytes(n);
    let at = this.liveBytes + size <= this.writeFillBytes ? this.makeRoom(size, false) : -1;
    if (at === -1) {
      this.shed();
      if (!hot) return -1;
      at = this.makeRoom(size, true);
    }
    return this.place(slot, n, at, size);
  }

  /**
   * put() of a slot known to hold no value here (the keydir's update of it
   * just dropped it) and a value of at most maxValueBytes: one table probe
   * fewer, for the write path.
   */
  putNew(slot: number, value: Uint8Array): void {
    const to = this.putNewTo(slot, value.length);
    if (to >= 0) this.copyIn(value, to);
  }

  private putNewTo(slot: number, n: number): number {
    const size = slotCacheEntryBytes(n);
    return this.place(slot, n, this.makeRoom(size, true), size);
  }

  /**
   * Writes the header of `slot`'s entry of an `n`-byte value at `at` (made
   * room for, `size` bytes) and indexes it; returns where the value's bytes
   * go (the caller copies them before anything else runs), -1 when `at` is FENCED.
   */
  private place(slot: number, n: number, at: number, size: number): number {
    if (at === FENCED) return -1;
    const w = this.words;
    w[at >>> 2] = slot;
    w[(at >>> 2) + 1] = n << 1;
    this.head = at + size;
    if (this.head > this.reachAt) this.reach(this.head);
    this.used += size;
    this.liveBytes += size;
    this.insert(slot, at);
    return at + HEADER_BYTES;
  }

  /** Copies `value` into the arena at `to`. */
  private copyIn(value: Uint8Array, to: number): void {
    const n = value.length;
    if (n <= COPY_LOOP_BYTES) {
      const a = this.arena;
      for (let j = 0; j < n; j++) a[to + j] = value[j]!;
    } else setBytes.call(this.arena, value, to);
  }

  /** Copies `src`'s `n` bytes at `from` into the arena at `to`, by words (copy-words.ts). */
  private copyFrom(src: DataView, from: number, n: number, to: number): void {
    copyWords(src, from, this.view, to, n);
  }

  /** The ring has written the arena up to `to`: counts it resident, and keeps the prefault fills ahead. */
  private reach(to: number): void {
    if (to > this.touched) {
      written(this.untouched, to - this.touched);
      this.touched = to;
    }
    if (this.prefaulting && this.fenceTo === 0 && to + SLOT_CACHE_PREFAULT_AHEAD_BYTES > this.touched)
      this.prefaultArena();
    this.reachAt =
      this.prefaulting && this.fenceTo === 0
        ? Math.max(to, this.touched - SLOT_CACHE_PREFAULT_AHEAD_BYTES)
        : this.touched;
  }

  /**
   * Starts the thread pool writing the next PREFAULT_PIECE_BYTES of the arena
   * past `touched`, fenced until it is done; the head keeps a header's room
   * before the fence, for the padding that steps over it (makeRoom).
   */
  private prefaultArena(): void {
    // At least a piece past the head: a fill the head would catch at once is wasted work on both sides.
    const from = Math.max(this.touched, this.head + PREFAULT_PIECE_BYTES);
    const to = Math.min(this.capacity, from + PREFAULT_PIECE_BYTES);
    if (to <= from) {
      this.prefaulting = false; // the whole arena is written
      return;
    }
    written(this.untouched, to - this.touched);
    this.touched = to;
    this.fenceFrom = from;
    this.fenceTo = to;
    this.arenaFills++;
    const arena = this.arena;
    prefault(arena.subarray(from, to), () => {
      if (arena !== this.arena) return; // a shed replaced it: nothing fences the new one
      this.fenceFrom = 0;
      this.fenceTo = 0;
      this.reach(this.head);
    });
  }

  /** Whether room of `size` bytes at the head would reach into the range a fill is writing (or its header's room). */
  private fenced(size: number): boolean {
    return this.fenceTo !== 0 && this.head < this.fenceTo && this.head + size > this.fenceFrom - HEADER_BYTES;
  }

  /** Steps the head over the range a fill is writing: a padding entry from the head to the fence's end. */
  private skipFence(): void {
    const gap = this.fenceTo - this.head;
    const w = this.words;
    w[this.head >>> 2] = PAD;
    w[(this.head >>> 2) + 1] = (gap - HEADER_BYTES) << 1;
    this.used += gap;
    this.head = this.fenceTo;
  }

  /**
   * The slot whose value `drop` last removed (-1: none since the last
   * `takeDropped`): a write refreshes the cache only for a key that was in it.
   */
  private lastDropped = -1;
  /** Where the entry `drop` removed last lies (still marked dropped: no makeRoom or clear since). */
  private lastDroppedAt = -1;
  /** The entry `refill` may revive in place: set by a true takeDropped, used once. */
  private revivable = -1;

  /** Whether the last value `drop` removed was `slot`'s (and forgets that it was). */
  takeDropped(slot: number): boolean {
    const was = this.lastDropped === slot;
    this.revivable = was ? this.lastDroppedAt : -1;
    this.lastDropped = -1;
    return was;
  }

  /**
   * putNew() of the slot a true takeDropped just named, with its new value:
   * when the value takes as many arena bytes as the one dropped, the dropped
   * entry is revived in place (its referenced bit kept) instead of a new one
   * appended, so rewriting a cached key does not advance the ring or evict.
   */
  refill(slot: number, value: Uint8Array): void {
    const to = this.refillTo(slot, value.length);
    if (to >= 0) this.copyIn(value, to);
  }

  /**
   * refill() of the `n` value bytes at `from` in `src` (a replica's record
   * in the write chunk: segment.ts reservedView), copied by words: no
   * Uint8Array is made for the value (Buffer#subarray per applied record
   * was ~3 % of a replica's CPU, replsys).
   */
  refillFrom(slot: number, src: DataView, from: number, n: number): void {
    const to = this.refillTo(slot, n);
    if (to >= 0) this.copyFrom(src, from, n, to);
  }

  /** refill's entry for an `n`-byte value: where its bytes go, -1 if it is not kept. */
  private refillTo(slot: number, n: number): number {
    const at = this.revivable;
    this.revivable = -1;
    const w = this.words;
    if (
      at < 0 ||
      w[at >>> 2] !== DROPPED ||
      slotCacheEntryBytes(w[(at >>> 2) + 1]! >>> 1) !== slotCacheEntryBytes(n)
    ) {
      // Appended: while warm, a full cache sheds what was only written rather than evict.
      return this.warm ? this.putWrittenTo(slot, n, true) : this.putNewTo(slot, n);
    }
    const word = w[(at >>> 2) + 1]!;
    w[at >>> 2] = slot;
    w[(at >>> 2) + 1] = (n << 1) | (word & REFERENCED);
    this.liveBytes += slotCacheEntryBytes(n);
    this.insert(slot, at);
    return at + HEADER_BYTES;
  }

  /** What warmEntry read last: nothing uses it, its store only keeps the compiler from dropping the reads. */
  warmedWord = 0;

  /**
   * Reads `slot`'s table bucket and, when it holds a value, the entry's
   * header, and nothing more: the keydir calls it as soon as a lookup's
   * bucket names the slot, before it reads the slot's record, so the cache
   * misses of the drop (SET) or locate (GET) that follow, a random table
   * line and a random arena line, overlap the record's instead of coming
   * one after another behind it.
   */
  warmEntry(slot: number): void {
    if (this.count === 0) return;
    const at = this.find(slot);
    this.warmedWord = at < 0 ? 0 : this.words[(at >>> 2) + 1]!;
  }

  /** Forgets the value of `slot`, if any. */
  drop(slot: number): void {
    if (this.count === 0) return;
    const t = this.table;
    const mask = this.mask;
    const key = slot + 1;
    for (let i = this.homeOf(key, this.shift); ; i = (i + 1) & mask) {
      const k = t[2 * i]!;
      if (k === 0) return;
      if (k === key) {
        const at = t[2 * i + 1]!;
        const w = this.words;
        w[at >>> 2] = DROPPED;
        this.liveBytes -= slotCacheEntryBytes(w[(at >>> 2) + 1]! >>> 1);
        this.removeBucket(i);
        this.lastDropped = slot;
        this.lastDroppedAt = at;
        return;
      }
    }
  }

  /** Drops the table prefaulted ahead (the idle memory reducer); the arena's prefaulted bytes cannot be given back alone. */
  releasePrefaulted(): void {
    if (!this.nextTable.started) return;
    this.nextTable.drop();
    this.tablePrefaultAt = this.count; // started again by the next value
  }

  /** Forgets every value. */
  clear(): void {
    this.warm = true;
    this.lastDropped = -1;
    this.revivable = -1;
    this.head = 0;
    this.tail = 0;
    this.used = 0;
    this.liveBytes = 0;
    this.count = 0;
    this.table = new Int32Array(2 * SLOT_CACHE_INITIAL_TABLE);
    this.mask = SLOT_CACHE_INITIAL_TABLE - 1;
    this.shift = 32 - Math.log2(SLOT_CACHE_INITIAL_TABLE);
    this.nextTable.drop();
    this.tablePrefaultAt = Number.POSITIVE_INFINITY;
  }

  /** Average table probes of a hit (1 = every value in its home bucket); for tests and benchmarks. */
  averageProbes(): number {
    const t = this.table;
    const mask = this.mask;
    let total = 0;
    for (let i = 0; i <= mask; i++) {
      const k = t[2 * i]!;
      if (k === 0) continue;
      const home = this.homeOf(k, this.shift);
      total += ((i - home) & mask) + 1;
    }
    return this.count === 0 ? 0 : total / this.count;
  }

  /** The home bucket of slot key `key` (slot + 1) in a table of 2^(32 - shift) buckets (HOME_KEY). */
  private homeOf(key: number, shift: number): number {
    const h = Math.imul(key ^ this.homeXor, this.homeMul1);
    return Math.imul(h ^ (h >>> 16), this.homeMul2) >>> shift;
  }

  /** Arena offset of the entry of `slot`, or -1. */
  private find(slot: number): number {
    const t = this.table;
    const mask = this.mask;
    const key = slot + 1;
    for (let i = this.homeOf(key, this.shift); ; i = (i + 1) & mask) {
      const k = t[2 * i]!;
      if (k === key) return t[2 * i + 1]!;
      if (k === 0) return -1;
    }
  }

  /**
   * Keeps only the values read since they were cached (CLOCK's bit set; their
   * bits cleared), copied in ring order into a new arena, and ends `warm`.
   * The old arena, with every page the ring touched, becomes garbage.
   */
  private shed(): void {
    const old = this.words;
    const from = this.arena;
    const cap = this.capacity;
    this.arena = Buffer.allocUnsafeSlow(cap);
    this.untouched = countUnwritten(this.arena.buffer, cap);
    // The old arena's fill (if any) fences nothing here. No fills for this
    // one: reads grow it at their pace, and it should hold no more pages
    // than its values (the server's memory after a bulk load).
    this.touched = 0;
    this.reachAt = 0;
    this.fenceFrom = 0;
    this.fenceTo = 0;
    this.prefaulting = false;
    this.words = new Int32Array(this.arena.buffer, this.arena.byteOffset, cap >>> 2);
    this.view = new DataView(this.arena.buffer, this.arena.byteOffset, cap);
    const w = this.words;
    let at = this.tail;
    let left = this.used;
    this.clear();
    this.warm = false;
    this.sheds++;
    let head = 0;
    while (left > 0) {
      const slot = old[at >>> 2]!;
      const word = old[(at >>> 2) + 1]!;
      const n = slotCacheEntryBytes(word >>> 1);
      if (slot >= 0 && (word & REFERENCED) !== 0) {
        from.copy(this.arena, head, at, at + n);
        w[(head >>> 2) + 1] = word & ~REFERENCED;
        this.insert(slot, head);
        head += n;
      }
      left -= n;
      at += n;
      if (at === cap) at = 0;
    }
    this.head = head;
    this.reach(head);
    this.used = head;
    this.liveBytes = head;
  }

  /**
   * Frees `size` contiguous bytes at `head` (wrapping the ring, reclaiming,
   * moving or evicting tail entries) and returns where they start; -1, when
   * `evict` is false, instead of moving or evicting a value (dropped entries
   * and padding it reclaimed on the way stay reclaimed).
   */
  private makeRoom(size: number, evict: boolean): number {
    // The ring moves: a dropped entry may be reclaimed, so none is revivable any more.
    this.lastDropped = -1;
    this.revivable = -1;
    const cap = this.capacity;
    const w = this.words;
    for (;;) {
      if (this.used === 0) {
        this.head = 0;
        this.tail = 0;
      }
      if (this.used === 0 || this.head > this.tail) {
        // Live bytes are [tail, head): free are [head, cap) and [0, tail).
        if (this.fenced(size)) {
          this.skipFence();
          continue;
        }
        if (cap - this.head >= size) return this.head;
        const gap = cap - this.head;
        if (gap > 0) {
          w[this.head >>> 2] = PAD;
          w[(this.head >>> 2) + 1] = (gap - HEADER_BYTES) << 1;
          this.used += gap;
        }
        this.head = 0;
        this.prefaulting = false; // the first lap is over: the arena is written whole
        continue;
      }
      // Live bytes are [tail, cap) and [0, head): free are [head, tail).
      // A fill still running after a whole lap (a synchronous burst): writes
      // here end within the tail's entry, so only a tail past the fence's
      // start can bring them into it.
      if (this.fenceTo !== 0 && this.head < this.fenceTo && this.tail >= this.fenceFrom - HEADER_BYTES)
        return FENCED;
      if (this.tail - this.head >= size) return this.head;
      const at = this.tail;
      const slot = w[at >>> 2]!;
      const word = w[(at >>> 2) + 1]!;
      const n = slotCacheEntryBytes(word >>> 1);
      // A write-fill touches no live entry: a shed must see the referenced bits as they are.
      if (slot >= 0 && !evict) return -1;
      if (slot >= 0 && (word & REFERENCED) !== 0) {
        // Second chance: the entry moves to head, its bit cleared.
        if (this.head !== at) {
          this.arena.copyWithin(this.head, at, at + n);
          this.relocate(slot, this.head);
        }
        w[(this.head >>> 2) + 1] = word & ~REFERENCED;
        this.head += n;
      } else {
        this.used -= n;
        if (slot >= 0) {
          this.liveBytes -= n;
          this.forget(slot);
          this.warm = false;
        }
      }
      this.tail = at + n;
      if (this.tail === cap) this.tail = 0;
    }
  }

  private insert(slot: number, at: number): void {
    if (2 * (this.count + 1) > this.mask + 1) this.grow();
    else if (this.count === this.tablePrefaultAt) this.prefaultTable();
    const t = this.table;
    const mask = this.mask;
    const key = slot + 1;
    let i = this.homeOf(key, this.shift);
    while (t[2 * i] !== 0) i = (i + 1) & mask;
    t[2 * i] = key;
    t[2 * i + 1] = at;
    this.count++;
  }

  /** Points the table entry of `slot` at its entry's new offset. */
  private relocate(slot: number, at: number): void {
    const t = this.table;
    const mask = this.mask;
    const key = slot + 1;
    for (let i = this.homeOf(key, this.shift); ; i = (i + 1) & mask) {
      if (t[2 * i] === key) {
        t[2 * i + 1] = at;
        return;
      }
    }
  }

  /** Removes `slot` from the table (its entry is being evicted). */
  private forget(slot: number): void {
    const t = this.table;
    const mask = this.mask;
    const key = slot + 1;
    for (let i = this.homeOf(key, this.shift); ; i = (i + 1) & mask) {
      if (t[2 * i] === key) {
        this.removeBucket(i);
        return;
      }
    }
  }

  /** Empties bucket i (backward shift: later members of its probe run move into the hole). */
  private removeBucket(i: number): void {
    const t = this.table;
    const mask = this.mask;
    for (let j = (i + 1) & mask; ; j = (j + 1) & mask) {
      const k = t[2 * j]!;
      if (k === 0) break;
      const home = this.homeOf(k, this.shift);
      // Move j into the hole at i unless its home lies cyclically in (i, j].
      if (i <= j ? home <= i || home > j : home <= i && home > j) {
        t[2 * i] = k;
        t[2 * i + 1] = t[2 * j + 1]!;
        i = j;
      }
    }
    t[2 * i] = 0;
    t[2 * i + 1] = 0;
    this.count--;
  }

  /** Starts prefaulting the table grow will take next. */
  private prefaultTable(): void {
    this.tablePrefaultAt = Number.POSITIVE_INFINITY;
    const bytes = 16 * (this.mask + 1);
    this.nextTable.start(Buffer.from(tableBuffer(bytes), 0, bytes));
  }

  /** Doubles the table. */
  private grow(): void {
    const old = this.table;
    const capacity = 2 * (this.mask + 1);
    const next = this.nextTable.take();
    if (next !== undefined) this.prefaultedGrows++;
    const t = next
      ? new Int32Array(next.buffer, next.byteOffset, 2 * capacity)
      : tableInt32Array(2 * capacity);
    // The next one starts at 3/8 full (this one grows at 1/2), when big enough to be worth it.
    this.tablePrefaultAt =
      16 * capacity >= PREFAULT_TABLE_MIN_BYTES ? (3 * capacity) / 8 : Number.POSITIVE_INFINITY;
    const mask = capacity - 1;
    const shift = this.shift - 1;
    for (let j = 0; j < old.length; j += 2) {
      const k = old[j]!;
      if (k === 0) continue;
      let i = this.homeOf(k, shift);
      while (t[2 * i] !== 0) i = (i + 1) & mask;
      t[2 * i] = k;
      t[2 * i + 1] = old[j + 1]!;
    }
    this.table = t;
    this.mask = mask;
    this.shift = shift;
  }
}
