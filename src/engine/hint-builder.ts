/**
 * The hint of the active segment, built as its records are appended, so that
 * sealing a full segment writes it out without reading the segment again.
 * The bytes are hint.ts's entries; only the file's header is added at the end.
 *
 * Invariant (what the store keeps, store.ts `point`/`unpoint`): for every key
 * with a record in the segment, exactly one entry is kept, its last record
 * there, in record order; and either the keydir points at that record, or
 * `orphans` holds the key with that record's position (its last record here
 * is a tombstone or an expired value, or it expired since). So the entry to
 * drop when a key gets a newer record is found from the keydir's previous
 * location (kd.prev*) without a lookup, or from `orphans` for the rarer keys
 * the keydir no longer holds. The result is what a scan of the segment keeping
 * each key's last record gives (test/engine/hint-builder.test.ts).
 *
 * Storage: entries in chunks of HINT_CHUNK_BYTES (never straddling two),
 * their record positions and starts in typed arrays (positions increase, so
 * an entry is found by binary search: first over `heads`, the position of
 * every HEAD_EVERY-th entry, then within that block), a byte per entry for
 * "dropped". When dropped entries outweigh kept ones the chunks are
 * squeezed in place, a step of SQUEEZE_STEP_ENTRIES entries in each later add or drop (in one
 * pass it took 20-35 ms of the event loop's CPU in the SET that set it off,
 * with 100k keys overwritten in the active segment), so the kept entries sit
 * in two index ranges until it ends: [0, packedTo) packed, [visitFrom,
 * entries) not yet visited, and no index in between.
 *
 * The first HINT_SPARE_CHUNKS chunks are buffers of their own, shared with
 * the next builders through a spare pool; a bigger hint takes the rest of
 * its chunks and its grown arrays from slabs (slabs.ts), which malloc maps
 * alone, so a sealed segment's hint leaves no freed buffers resident in
 * malloc's heap. The builders share one `slabs`: a new builder goes on in
 * the slab the last one left. Each carved a slab of its own, the next
 * segment's at the rotation while the sealed one's was still held (its
 * hint being written): a fresh 36 MiB ArrayBuffer is young in V8's new
 * space, and past 32 MiB of young ArrayBuffer bytes every ArrayBuffer
 * allocation runs a scavenge first (reason "external memory pressure"),
 * two of 3-9 ms until it is promoted, then a mark-compact: 8-19 ms of GC
 * in the first seal's window (BENCHMARKS.md).
 *
 * A released builder's slab chunks and grown entry arrays are recycled: the
 * next builders take them before carving their own (`recycledChunks`,
 * `recycledArrays`, up to HINT_RECYCLED_CHUNKS_MAX chunks). Each builder
 * carved a fresh 36 MiB slab and grew fresh arrays (~9 MB), and V8 counts
 * every new ArrayBuffer whole in its external memory, freed only by a
 * mark-compact: a SET load at pipeline 16 ran one every ~1.5 segments. Only
 * `release` puts storage there, which the sealer calls once the hint file is
 * written, so nothing a sealed segment's hint still holds is reused (its
 * prefaulted chunk goes there too). The idle memory reducer drops them
 * (`dropRecycledHintStorage`, and the shared slab when part of it was
 * dropped) and moves the active builder out of what it took and of what
 * it carved itself from those slabs (`releaseRecycled`): a slab stays
 * resident while any part of it is referenced.
 *
 * Only the store's event loop touches a builder. Once the segment is sealed
 * the builder is frozen and handed to the sealer (sealer.ts), which streams
 * it to the hint file in steps and then releases its chunks.
 */
import { crc32 } from 'node:zlib';
import { copyWords } from './copy-words.js';
import {
  HINT_ENTRY_BYTES,
  HINT_HEADER_BYTES,
  writeHintEntry,
  writeHintEntryFrom,
  writeHintHeader,
} from './hint.js';
import {
  HINT_CHUNK_BYTES,
  HINT_COMPACT_MIN_BYTES,
  HINT_PREFAULT_CHUNKS,
  HINT_RECYCLED_CHUNKS_MAX,
  HINT_SPARE_CHUNKS,
} from './limits.js';
import { PrefaultAhead, PrefaultPool } from './prefault.js';
import { Slabs, tableBuffer, WASM_PAGE_BYTES } from './slabs.js';
import { AS_VARIABLE } from './v8-fields.js';

const INITIAL_ENTRIES = 1024;
/**
 * Entries a squeeze visits per add or drop. Each call adds at most one
 * entry, so a squeeze ends within entries / (this - 1) calls; a step moves at
 * most this many entries (~3 µs for short keys).
 */
export const SQUEEZE_STEP_ENTRIES = 32;
/**
 * `heads` holds the position of every entry whose index is a multiple of
 * this (a power of two: HEAD_SHIFT): `find` searches that array (1/16 of
 * the positions' bytes: ~120 KiB for a full 64 MiB segment of 139-byte
 * records), whose first probes are the same every time, then one block of
 * this many positions: 64 bytes, one or two cache lines.
 */
const HEAD_SHIFT = 4;
const HEAD_EVERY = 1 << HEAD_SHIFT;

/** Chunks of their own (not from a slab) of sealed segments' builders, kept for the next ones. */
const spare: Buffer[] = [];

/** A builder's entry arrays (see HintBuilder.starts). */
interface EntryArrays {
  starts: Uint32Array;
  positions: Uint32Array;
  dropped: Uint8Array;
}

const EMPTY_VIEW: DataView = new DataView(new ArrayBuffer(0));

/** Arrays smaller than this are not recycled: plain arrays, a few hundred KiB. */
const RECYCLED_ARRAYS_MIN_ENTRIES = 65536;
/** Slab chunks of released builders, taken by the next ones before their own slab's (see the file header). */
const recycledChunks: Buffer[] = [];
/** The biggest entry arrays a released builder grew, taken by the next grow they fit (see the file header). */
let recycledArrays: EntryArrays | undefined;

/**
 * The slabs every builder carves its chunks and grown arrays from (see the
 * file header): a new builder goes on in the slab the previous ones left,
 * so the first rotation carves no fresh one while the sealed builder is
 * still held.
 */
const slabs = new Slabs();

/** The slabs of the storage the last dropRecycledHintStorage dropped (if any), which releaseRecycled moves out of. */
let droppedSlabs = new WeakSet<ArrayBufferLike>();
let droppedAny = false;

/**
 * Forgets the recycled chunks and arrays (the idle memory reducer): once no
 * builder holds part of their slabs (HintBuilder.releaseRecycled), the GC
 * frees them. The shared slab is forgotten too when part of it was dropped.
 */
export function dropRecycledHintStorage(): void {
  droppedSlabs = new WeakSet(recycledChunks.map((c) => c.buffer));
  if (recycledArrays !== undefined) droppedSlabs.add(recycledArrays.positions.buffer);
  droppedAny = recycledChunks.length > 0 || recycledArrays !== undefined;
  const current = slabs.current;
  if (current !== undefined && droppedSlabs.has(current)) slabs.drop();
  recycledChunks.length = 0;
  recycledArrays = undefined;
}

/** Recycled chunks held now (tests). */
export function recycledHintChunks(): number {
  return recycledChunks.length;
}

function ownChunk(c: Buffer): boolean {
  return c.buffer.byteLength === HINT_CHUNK_BYTES;
}

/** Where HintBuilder.fill resumes: the next entry to copy. */
export interface HintCursor {
  entry: number;
}

/** fill copies runs up to this long by 32-bit words (WordCopier); longer ones by Buffer.copy. */
const RUN_WORD_COPY_MAX_BYTES = 512;

/**
 * Copies between chunks and buffers by 32-bit words through DataViews of
 * the two (copyWords), keeping the view of the last source and the last
 * destination, so a view is made once per chunk, not per copy. Node 20's
 * Buffer.copy of a range makes a Uint8Array of the source range at every
 * call: a squeeze moves an entry or two per SET when keys are overwritten
 * (~70% of the V8 heap a SET allocated at pipeline 16), and a sealed
 * hint's fill copies runs an entry or two long between dropped entries
 * (~7 B per SET, p16gc). `forget` drops the views: a chunk's view
 * would keep its slab alive after the builder is released or recycled.
 */
class WordCopier {
  private src: Buffer | undefined;
  private srcView: DataView = EMPTY_VIEW;
  private dst: Buffer | undefined;
  private dstView: DataView = EMPTY_VIEW;

  /** Copies src[from, from + n) to dst at `to`. */
  copy(src: Buffer, from: number, dst: Buffer, to: number, n: number): void {
    if (src !== this.src) {
      this.src = src;
      this.srcView = new DataView(src.buffer, src.byteOffset, src.length);
    }
    if (dst !== this.dst) {
      this.dst = dst;
      this.dstView = new DataView(dst.buffer, dst.byteOffset, dst.length);
    }
    copyWords(this.srcView, from, this.dstView, to, n);
  }

  forget(): void {
    this.src = this.dst = undefined;
    this.srcView = this.dstView = EMPTY_VIEW;
  }
}

export class HintBuilder {
  /** Entries kept (added, not dropped). */
  count = 0;
  /** Bytes of the entries kept: the hint's body length. */
  bytes = 0;
  /** Entries added and not squeezed out (kept or dropped). */
  private entries = 0;
  private droppedBytes = 0;
  private chunks: Buffer[] = [];
  /** Chunks emptied by a squeeze, taken again before new ones. */
  private free: Buffer[] = [];
  /** A squeeze is under way (see the file header). */
  private squeezing = false;
  /** While squeezing: entries [0, packedTo) are packed, [visitFrom, entries) not yet visited. */
  private packedTo = 0;
  private visitFrom = 0;
  /** While squeezing: where the next kept entry goes (chunk index, byte in it). */
  private packChunk = 0;
  private packUsed = 0;
  /** Squeezes started (tests). */
  squeezes = 0;
  /** Chunks past the spare ones, carved from `slabs` and prefaulted a step ahead (prefault.ts). */
  private readonly slabChunks = new PrefaultPool(
    () => slabs.take(HINT_CHUNK_BYTES),
    HINT_PREFAULT_CHUNKS,
    false,
  );
  /**
   * The entry arrays' next size, prefaulted once a quarter of the current
   * ones is left (their copy and their new half were ~2,200 first writes to
   * fresh pages per 64 MiB segment on the event loop). A WebAssembly memory
   * of its own (slabs.ts tableBuffer), not slab bytes: the idle memory
   * reducer can drop it (releasePrefaulted) and the GC unmaps it, and so the
   * arrays grown into it once the builder is released.
   */
  private readonly nextArrays = new PrefaultAhead(false);
  /** Entries at which the next arrays are started (Infinity: not from a slab, or started). */
  private prefaultAt = Number.POSITIVE_INFINITY;
  /** Times grow took prefaulted arrays (tests). */
  prefaultedGrows = 0;
  /** Chunks it took from `recycledChunks`, which releaseRecycled moves out of. */
  private readonly tookChunks = new Set<Buffer>();
  /** Its arrays are `recycledArrays` it took. */
  private tookArrays = false;
  /** Bytes used in the last chunk. */
  private used = HINT_CHUNK_BYTES;
  /** Entry i starts at byte starts[i] of the chunks taken as one run (chunk * HINT_CHUNK_BYTES + at). */
  private starts: Uint32Array = new Uint32Array(INITIAL_ENTRIES);
  /** Record position of entry i; strictly increasing. */
  private positions: Uint32Array = new Uint32Array(INITIAL_ENTRIES);
  private dropped: Uint8Array = new Uint8Array(INITIAL_ENTRIES);
  /**
   * heads[b] = positions[b * HEAD_EVERY] for every such index below
   * `entries`, except in a squeeze's gap [packedTo, visitFrom) (find never
   * searches there). A plain array of positions.length / HEAD_EVERY entries.
   */
  private heads: Uint32Array = new Uint32Array(INITIAL_ENTRIES >>> HEAD_SHIFT);
  /** Keys whose kept entry the keydir does not point at: key → that record's position. */
  private readonly orphans = new Map<string, number>();

  /**
   * `segmentBytes`: the size past which the segment is sealed (the store's
   * maxSegmentBytes): the next arrays are prefaulted only when the entries so
   * far, scaled to it, say the arrays will grow again before it is sealed.
   */
  constructor(private readonly segmentBytes = Number.POSITIVE_INFINITY) {
    // Variables from the start (v8-fields.ts): the first squeeze or release changes them.
    this.droppedBytes = this.packedTo = this.visitFrom = AS_VARIABLE;
    this.droppedBytes = this.packedTo = this.visitFrom = 0;
    this.squeezing = this.tookArrays = true;
    this.squeezing = this.tookArrays = false;
    this.chunks = this.free = [];
    this.chunks = [];
    this.free = [];
  }

  /** Adds the entry of a record just appended at `position` (after every earlier one). */
  add(
    key: string,
    offset: number,
    position: number,
    valueLength: number,
    expiresAt: number,
    flags: number,
  ): void {
    const at = this.place(key.length, position);
    writeHintEntry(
      this.chunks[this.chunks.length - 1]!,
      at,
      key,
      offset,
      position,
      valueLength,
      expiresAt,
      flags,
    );
  }

  /**
   * `add` of the record just encoded whose key's `keyLength` bytes are at
   * keyAt in `record` (a DataView of the write chunk: segment.ts
   * reservedView), copied from there by words (writeHintEntryFrom).
   */
  addFrom(
    record: DataView,
    keyAt: number,
    keyLength: number,
    offset: number,
    position: number,
    valueLength: number,
    expiresAt: number,
    flags: number,
  ): void {
    const at = this.place(keyLength, position);
    const chunk = this.chunks[this.chunks.length - 1]!;
    if (chunk !== this.viewed) {
      this.viewed = chunk;
      this.view = new DataView(chunk.buffer, chunk.byteOffset, chunk.length);
    }
    writeHintEntryFrom(
      this.view,
      at,
      record,
      keyAt,
      keyLength,
      offset,
      position,
      valueLength,
      expiresAt,
      flags,
    );
  }

  /**
   * Counts a new entry of a `keyLength`-byte key for the record at
   * `position` and makes room for it at the end of the last chunk (a new
   * chunk when it does not fit); returns where there it goes.
   */
  private place(keyLength: number, position: number): number {
    if (this.squeezing) this.squeezeStep();
    const size = HINT_ENTRY_BYTES + keyLength;
    if (this.used + size > HINT_CHUNK_BYTES) {
      this.chunks.push(this.takeChunk());
      this.used = 0;
    }
    const n = this.entries;
    if (n === this.positions.length) this.grow();
    else if (n === this.prefaultAt) this.prefaultArrays(position);
    const at = this.used;
    this.starts[n] = (this.chunks.length - 1) * HINT_CHUNK_BYTES + at;
    this.positions[n] = position;
    if ((n & (HEAD_EVERY - 1)) === 0) this.heads[n >>> HEAD_SHIFT] = position;
    this.dropped[n] = 0;
    this.entries = n + 1;
    this.used = at + size;
    this.count++;
    this.bytes += size;
    return at;
  }

  /** The last chunk `addFrom` wrote to, and a DataView of its bytes. */
  private viewed: Buffer | undefined;
  private view: DataView = EMPTY_VIEW;

  /**
   * Drops the entry of the record at `position` (a newer record of its key
   * was appended). `keyLength` is that key's length, which the caller has in
   * hand: the entry's size without reading the entry (one cache miss fewer
   * on every overwrite of a key of the active segment).
   */
  dropAt(position: number, keyLength: number): void {
    const i = this.find(position);
    if (i < 0 || this.dropped[i] !== 0) return;
    this.dropped[i] = 1;
    const size = HINT_ENTRY_BYTES + keyLength;
    this.count--;
    this.bytes -= size;
    if (this.squeezing) {
      // An entry not yet visited goes with this squeeze; a packed one waits for the next.
      if (i < this.packedTo) this.droppedBytes += size;
      this.squeezeStep();
      return;
    }
    this.droppedBytes += size;
    if (this.droppedBytes >= HINT_COMPACT_MIN_BYTES && this.droppedBytes > this.bytes) this.startSqueeze();
  }

  /** Entries held, kept or dropped (tests). */
  get entriesHeld(): number {
    return this.entries;
  }

  /** A squeeze is under way (tests). */
  get squeezeUnderWay(): boolean {
    return this.squeezing;
  }

  /** The chunks and the positions array it holds now (tests: which memory it took). */
  get held(): { chunks: readonly Buffer[]; positions: Uint32Array } {
    return { chunks: this.chunks, positions: this.positions };
  }

  /** Keys the keydir no longer points at here (see the invariant above). */
  get orphanCount(): number {
    return this.orphans.size;
  }

  /** `key`'s kept entry is the record at `position`, which the keydir does not point at. */
  orphan(key: string, position: number): void {
    const earlier = this.orphans.get(key);
    if (earlier !== undefined && earlier !== position) this.dropAt(earlier, key.length);
    this.orphans.set(key, position);
  }

  /** `key` got a newer record and the keydir did not point at its last one here: drop that one, if any. */
  adopt(key: string): void {
    const earlier = this.orphans.get(key);
    if (earlier === undefined) return;
    this.orphans.delete(key);
    this.dropAt(earlier, key.length);
  }

  /** Writes the hint's header (HINT_HEADER_BYTES) into `buf` for a body whose crc32 is `bodyCrc`. */
  header(buf: Buffer, baseOffset: number, bodyCrc: number): void {
    writeHintHeader(buf, baseOffset, this.count, this.bytes, bodyCrc);
  }

  /**
   * Copies kept entries, from `cursor` on and in order, into `out` until the
   * next one does not fit (`out` must hold at least one entry of the longest key)
   * or `maxVisits` entries, kept or dropped, have been looked at; returns the
   * bytes copied (0 when every entry has been copied, or when the visits went
   * to dropped entries: `filledAll` tells). The visits bound a sealer's step:
   * the oldest entries are mostly dropped (their keys written again later in
   * the segment), and the first 16 KiB of a 64 MiB segment's hint, 100k keys
   * written at random, lay among 65k entries (~2 ms of the loop, unoptimised).
   */
  fill(out: Buffer, cursor: HintCursor, maxVisits = Number.POSITIVE_INFINITY): number {
    let n = 0;
    let i = cursor.entry;
    const visitEnd = i + maxVisits;
    // Kept entries that lie end to end in one chunk are copied as one run
    // (one copy per run of ~6,000 short entries instead of per entry).
    let run: Buffer | undefined;
    let runFrom = 0;
    let runTo = 0;
    let runOut = 0;
    try {
      for (; i < this.entries && i < visitEnd; i++) {
        if (i === this.packedTo && i < this.visitFrom) {
          i = this.visitFrom; // over a squeeze's gap
          if (i === this.entries) break;
        }
        if (this.dropped[i] !== 0) continue;
        const size = this.entrySize(i);
        if (n + size > out.length) break;
        const start = this.starts[i]!;
        const chunk = this.chunks[Math.floor(start / HINT_CHUNK_BYTES)]!;
        const at = start % HINT_CHUNK_BYTES;
        if (chunk === run && at === runTo) {
          runTo += size;
        } else {
          if (run !== undefined) this.copyRun(run, runFrom, runTo, out, runOut);
          run = chunk;
          runFrom = at;
          runTo = at + size;
          runOut = n;
        }
        n += size;
      }
      if (run !== undefined) this.copyRun(run, runFrom, runTo, out, runOut);
    } finally {
      this.fillCopier.forget();
    }
    cursor.entry = i;
    return n;
  }

  /** fill's copies of short runs (see WordCopier). */
  private readonly fillCopier = new WordCopier();

  /** Copies chunk[from, to) to `out` at `at`: a short run by words, a long one (its allocation nothing next to its bytes) by Buffer.copy. */
  private copyRun(chunk: Buffer, from: number, to: number, out: Buffer, at: number): void {
    if (to - from > RUN_WORD_COPY_MAX_BYTES) chunk.copy(out, at, from, to);
    else this.fillCopier.copy(chunk, from, out, at, to - from);
  }

  /** `fill` has copied every entry from `cursor`'s start. */
  filledAll(cursor: HintCursor): boolean {
    return cursor.entry >= this.entries;
  }

  /** The whole hint file in one buffer (tests, small segments). */
  encode(baseOffset: number): Buffer {
    const buf = Buffer.allocUnsafe(HINT_HEADER_BYTES + this.bytes);
    const n = this.fill(buf.subarray(HINT_HEADER_BYTES), { entry: 0 });
    if (n !== this.bytes) throw new Error(`hint builder copied ${n} bytes of ${this.bytes}`);
    this.header(buf, baseOffset, crc32(buf.subarray(HINT_HEADER_BYTES)));
    return buf;
  }

  /**
   * Gives the chunks and arrays back for the next segments' builders (only
   * once nothing reads this one's entries: the sealer, after writing the
   * hint file); the builder is empty after.
   */
  release(): void {
    for (const c of [...this.chunks, ...this.free, ...this.slabChunks.drain()]) {
      if (ownChunk(c)) {
        if (spare.length < HINT_SPARE_CHUNKS) spare.push(c);
      } else if (recycledChunks.length < HINT_RECYCLED_CHUNKS_MAX) recycledChunks.push(c);
    }
    const cap = this.positions.length;
    if (cap >= RECYCLED_ARRAYS_MIN_ENTRIES && cap > (recycledArrays?.positions.length ?? 0))
      recycledArrays = { starts: this.starts, positions: this.positions, dropped: this.dropped };
    this.tookChunks.clear();
    this.tookArrays = false;
    this.chunks = [];
    this.free = [];
    this.viewed = undefined;
    this.view = EMPTY_VIEW;
    this.mover.forget();
    this.nextArrays.drop();
    this.prefaultAt = Number.POSITIVE_INFINITY;
    this.starts = new Uint32Array(INITIAL_ENTRIES);
    this.positions = new Uint32Array(INITIAL_ENTRIES);
    this.dropped = new Uint8Array(INITIAL_ENTRIES);
    this.heads = new Uint32Array(INITIAL_ENTRIES >>> HEAD_SHIFT);
    this.used = HINT_CHUNK_BYTES;
    this.entries = this.count = this.bytes = this.droppedBytes = 0;
    this.squeezing = false;
    this.packedTo = this.visitFrom = 0;
    this.orphans.clear();
  }

  private takeChunk(): Buffer {
    const reused = this.free.pop();
    if (reused !== undefined) return reused;
    if (this.chunks.length >= HINT_SPARE_CHUNKS) return this.recycledChunk() ?? this.slabChunks.take();
    // The last spare chunk: the first slab chunk is prefaulted from now on, not from its own take
    // (unless recycled ones wait: a slab carved for nothing would count 36 MiB in V8's external memory).
    if (this.chunks.length === HINT_SPARE_CHUNKS - 1 && recycledChunks.length === 0) this.slabChunks.warm();
    return spare.pop() ?? Buffer.allocUnsafeSlow(HINT_CHUNK_BYTES);
  }

  /**
   * A released builder's slab chunk, if any is left. Written before, so it
   * costs no page faults; when they run out the next chunk is carved from
   * this builder's slab unprefaulted (one chunk), which then prefaults ahead.
   */
  private recycledChunk(): Buffer | undefined {
    const c = recycledChunks.pop();
    if (c !== undefined) this.tookChunks.add(c);
    return c;
  }

  /**
   * Moves the chunks and arrays it took from released builders into memory
   * of its own (the idle memory reducer, with dropRecycledHintStorage): they
   * share slabs with the recycled storage just dropped, which would stay
   * resident while any part of it is referenced. A copy of the builder's
   * entries; the first writes to its new chunks fault on the event loop,
   * which is idle then.
   */
  releaseRecycled(): void {
    const dropped = (c: Buffer) => this.tookChunks.has(c) || droppedSlabs.has(c.buffer);
    if (this.tookChunks.size > 0 || droppedAny) {
      this.free = this.free.filter((c) => !dropped(c));
      for (const c of this.slabChunks.drain()) if (!dropped(c)) this.free.push(c);
      for (let i = 0; i < this.chunks.length; i++) {
        const c = this.chunks[i]!;
        if (!dropped(c)) continue;
        const own = slabs.take(HINT_CHUNK_BYTES);
        c.copy(own);
        this.chunks[i] = own;
      }
      this.tookChunks.clear();
      this.viewed = undefined;
      this.view = EMPTY_VIEW; // it would keep the last recycled chunk's slab alive
      this.mover.forget();
    }
    if (this.tookArrays || droppedSlabs.has(this.positions.buffer)) {
      this.tookArrays = false;
      let cap = INITIAL_ENTRIES;
      while (cap < this.entries) cap *= 2;
      const b = this.arrayBytes(9 * cap);
      this.setArrays(cap, b ? arraysIn(b, cap) : plainArrays(cap));
    }
  }

  /** An array of `bytes` for grow: from a slab once the hint is past its own chunks. */
  private arrayBytes(bytes: number): Buffer | undefined {
    return this.chunks.length >= HINT_SPARE_CHUNKS ? slabs.take(bytes) : undefined;
  }

  private entrySize(i: number): number {
    const start = this.starts[i]!;
    const chunk = this.chunks[Math.floor(start / HINT_CHUNK_BYTES)]!;
    const at = (start % HINT_CHUNK_BYTES) + 25; // the entry's key length (hint.ts)
    return HINT_ENTRY_BYTES + (chunk[at]! | (chunk[at + 1]! << 8));
  }

  /**
   * Entry index of the record at `position`, -1 if none. A SET overwriting
   * a key of the active segment comes here every time, for a position
   * anywhere in it. Interpolation (4 steps, then binary search) read ~16
   * positions a find once squeezes had left the kept entries denser towards
   * the segment's end (simulated: 100k keys overwritten at random over a
   * 64 MiB segment), most of them in cache lines of their own; the search
   * over `heads` reads ~15 positions in 1/HEAD_EVERY of the memory, the same
   * first ones every time, then at most 5 within one block of HEAD_EVERY.
   */
  private find(position: number): number {
    const split = this.packedTo;
    if (split > 0 && position <= this.positions[split - 1]!) return this.findIn(position, 0, split - 1);
    return this.findIn(position, this.visitFrom, this.entries - 1);
  }

  /** `find` within entries lo..hi (no squeeze gap inside). */
  private findIn(position: number, lo: number, hi: number): number {
    const heads = this.heads;
    // The blocks whose head entry lies in lo..hi: a..z.
    let a = (lo + HEAD_EVERY - 1) >>> HEAD_SHIFT;
    let z = hi >>> HEAD_SHIFT;
    if (a <= z) {
      if (position < heads[a]!) {
        // Before the first head: in the part block lo..a's head - 1.
        hi = Math.min(hi, (a << HEAD_SHIFT) - 1);
      } else {
        // The last head at or before position: its block.
        while (a < z) {
          const m = (a + z + 1) >>> 1;
          if (heads[m]! <= position) a = m;
          else z = m - 1;
        }
        lo = a << HEAD_SHIFT;
        hi = Math.min(hi, lo + HEAD_EVERY - 1);
      }
    }
    const p = this.positions;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = p[mid]!;
      if (v < position) lo = mid + 1;
      else if (v > position) hi = mid - 1;
      else return mid;
    }
    return -1;
  }

  /**
   * Starts prefaulting the arrays grow will take next, when they come from a
   * slab and the segment's records so far (to `position`) say it will fill
   * them before it is sealed.
   */
  private prefaultArrays(position: number): void {
    this.prefaultAt = Number.POSITIVE_INFINITY;
    if (this.chunks.length < HINT_SPARE_CHUNKS) return; // grow takes plain arrays
    if ((recycledArrays?.positions.length ?? 0) >= 2 * this.positions.length) return; // grow takes those
    if (position > 0 && (this.entries * this.segmentBytes) / position < this.positions.length) return;
    const bytes = 9 * this.positions.length * 2;
    // Whole wasm pages only (64 KiB: arrays of 65536 entries or more); a padded fallback would count 36 MiB in V8's external memory.
    if (bytes % WASM_PAGE_BYTES !== 0) return;
    this.nextArrays.start(Buffer.from(tableBuffer(bytes), 0, bytes));
  }

  /** Drops the arrays prefaulted ahead (the idle memory reducer); grow then makes fresh ones. */
  releasePrefaulted(): void {
    this.nextArrays.drop();
  }

  private grow(): void {
    const cap = this.positions.length * 2;
    const recycled = recycledArrays;
    if (recycled !== undefined && recycled.positions.length >= cap) {
      recycledArrays = undefined;
      this.tookArrays = true;
      this.nextArrays.drop();
      this.setArrays(recycled.positions.length, recycled);
      return;
    }
    const prefaulted = this.nextArrays.take();
    if (prefaulted !== undefined) this.prefaultedGrows++;
    const b = prefaulted ?? this.arrayBytes(9 * cap);
    this.setArrays(cap, b ? arraysIn(b, cap) : plainArrays(cap));
  }

  /** Makes `to` (of `cap` entries, at least `entries`) the entry arrays, the entries copied into it. */
  private setArrays(cap: number, to: EntryArrays): void {
    const n = this.entries;
    to.starts.set(this.starts.subarray(0, n));
    to.positions.set(this.positions.subarray(0, n));
    to.dropped.set(this.dropped.subarray(0, n));
    const heads = new Uint32Array((cap + HEAD_EVERY - 1) >>> HEAD_SHIFT);
    heads.set(this.heads.subarray(0, Math.min(this.heads.length, heads.length)));
    this.heads = heads;
    this.starts = to.starts;
    this.positions = to.positions;
    this.dropped = to.dropped;
    this.prefaultAt = cap - cap / 4;
  }

  /**
   * Starts moving the kept entries down over the dropped ones, in place and
   * in order (an entry still never straddles two chunks, and never moves up:
   * packing a subsequence first-fit ends no later than packing the whole, so
   * an entry's new bytes end before the next one's old bytes start); each
   * step moves the next SQUEEZE_STEP_ENTRIES, and the last gives back the
   * chunks left empty. The dropped entries now pending all go with it.
   */
  private startSqueeze(): void {
    this.squeezing = true;
    this.squeezes++;
    this.packedTo = this.visitFrom = 0;
    this.packChunk = this.packUsed = 0;
    this.droppedBytes = 0;
    this.squeezeStep();
  }

  private squeezeStep(): void {
    const chunks = this.chunks;
    const starts = this.starts;
    const positions = this.positions;
    const dropped = this.dropped;
    const heads = this.heads;
    const end = Math.min(this.entries, this.visitFrom + SQUEEZE_STEP_ENTRIES);
    let n = this.packedTo;
    let chunk = this.packChunk;
    let used = this.packUsed;
    for (let i = this.visitFrom; i < end; i++) {
      if (dropped[i] !== 0) continue;
      const start = starts[i]!;
      const from = start % HINT_CHUNK_BYTES;
      const src = chunks[(start - from) / HINT_CHUNK_BYTES]!;
      const size = HINT_ENTRY_BYTES + (src[from + 25]! | (src[from + 26]! << 8)); // key length (hint.ts)
      if (used + size > HINT_CHUNK_BYTES) {
        chunk++;
        used = 0;
      }
      const dst = chunks[chunk]!;
      if (dst !== src) this.mover.copy(src, from, dst, used, size);
      else if (used !== from) src.copyWithin(used, from, from + size);
      starts[n] = chunk * HINT_CHUNK_BYTES + used;
      positions[n] = positions[i]!;
      if ((n & (HEAD_EVERY - 1)) === 0) heads[n >>> HEAD_SHIFT] = positions[i]!;
      dropped[n] = 0;
      n++;
      used += size;
    }
    this.packedTo = n;
    this.visitFrom = end;
    this.packChunk = chunk;
    this.packUsed = used;
    if (end === this.entries) this.endSqueeze();
  }

  /** A squeeze's moves of an entry to another chunk (see WordCopier). */
  private readonly mover = new WordCopier();

  private endSqueeze(): void {
    this.mover.forget();
    const n = this.packedTo;
    const keep = n === 0 ? 0 : this.packChunk + 1;
    this.free.push(...this.chunks.splice(keep));
    this.used = keep === 0 ? HINT_CHUNK_BYTES : this.packUsed;
    this.entries = n;
    this.squeezing = false;
    this.packedTo = this.visitFrom = 0;
  }
}

/** Entry arrays of `cap` entries laid out in `b` (9 * cap bytes). */
function arraysIn(b: Buffer, cap: number): EntryArrays {
  return {
    starts: new Uint32Array(b.buffer, b.byteOffset, cap),
    positions: new Uint32Array(b.buffer, b.byteOffset + 4 * cap, cap),
    dropped: new Uint8Array(b.buffer, b.byteOffset + 8 * cap, cap),
  };
}

function plainArrays(cap: number): EntryArrays {
  return { starts: new Uint32Array(cap), positions: new Uint32Array(cap), dropped: new Uint8Array(cap) };
}
