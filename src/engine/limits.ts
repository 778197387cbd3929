/**
 * Every size and limit of the engine, in one place. Units are in the names:
 * `_BYTES` are bytes, `_MS` milliseconds.
 */

/** Longest key accepted, in bytes (UTF-8 for string keys). Fits the record's u16 key length. */
export const MAX_KEY_BYTES = 16 * 1024;

/** Largest value accepted, in bytes. Redis's limit; fits the record's u32 value length. */
export const MAX_VALUE_BYTES = 512 * 1024 * 1024;

/**
 * Largest time to live, ms (SET ttl, EXPIRE, SDK `ttlMs`): 2^52 ms, about
 * 142,700 years. A record stores its expiry as `now + ttl` in a u64 that the
 * engine reads as a JS number, exact only below 2^53 (record.ts, hint.ts,
 * the keydir's expiries); with ttl ≤ 2^52 the sum stays below 2^53 until the
 * year 144,000, so an accepted expiry reads back after any restart exactly as
 * written. Larger TTLs are refused (INVALID_ARGUMENT), never wrapped.
 */
export const MAX_TTL_MS = 2 ** 52;

/** Default segment size at which the active segment is sealed and a new one opened. */
export const DEFAULT_MAX_SEGMENT_BYTES = 64 * 1024 * 1024;

/** Smallest segment size allowed (tests use kilobytes; below this a record rarely fits). */
export const MIN_MAX_SEGMENT_BYTES = 1024;

/** Largest segment size: record positions are u32. */
export const MAX_MAX_SEGMENT_BYTES = 2 ** 32 - 1;

/** Distance between two entries of a segment's sparse offset index. */
export const INDEX_INTERVAL_BYTES = 4096;

/** Default period of the fsync tick in `interval` durability mode (Redis: appendfsync everysec). */
export const DEFAULT_FSYNC_INTERVAL_MS = 1000;

/** Default size of the hot-value cache (lru-cache, sized in bytes). 0 disables it. */
export const DEFAULT_CACHE_BYTES = 64 * 1024 * 1024;

/**
 * Default size of the small-value cache (slot-cache.ts), bytes. 0 disables
 * it. A value takes its length plus 8 bytes, rounded up to 8: 32 MiB holds
 * ~300k values of 100 B. Filled on read, and on write until the writes
 * fill half of it (then the values only written are shed: slot-cache.ts); a page
 * of it costs resident memory only once a value went there.
 */
export const DEFAULT_SLOT_CACHE_BYTES = 32 * 1024 * 1024;

/**
 * Values up to this size go to the small-value cache (slot-cache.ts), larger
 * ones to the lru-cache. The slot cache answers a hit with no system call and
 * no key string (engine bench, get hot: see BENCHMARKS.md).
 */
export const SLOT_CACHE_MAX_VALUE_BYTES = 4096;

/**
 * Share of the small-value cache a run of writes fills (SlotCache.putWritten),
 * as a divisor of its capacity: 2 = half. A write-fill that would take the
 * values held past capacity / this ends the fill (the values only written are
 * shed): a load that big likely outgrows the cache, and filling the rest of it
 * only to shed it cost a bulk load ~0.1-0.2 µs per set (fresh arena and table
 * pages, engine4). A load that fits in half (the server bench's 100k keys of
 * 100 B: a third of 32 MiB) is still read back from the cache.
 */
export const SLOT_CACHE_WRITE_FILL_DIVISOR = 2;

/** Largest small-value cache: one Buffer, entry offsets are i32. */
export const MAX_SLOT_CACHE_BYTES = 2 ** 31 - 8;

/**
 * A small-value cache of at least this many bytes prefaults its arena ahead of
 * its ring's head during the ring's first lap, and its table's next size
 * before a doubling (slot-cache.ts, prefault.ts): while a load fills it, those
 * were ~6 first writes to fresh pages per 1000 new-key sets on the event loop
 * (11-16 µs each on the benchmark VM). A smaller cache has few pages to fault.
 */
export const SLOT_CACHE_PREFAULT_MIN_BYTES = 4 * 1024 * 1024;

/**
 * A new small-value cache's arena is prefaulted (slot-cache.ts) while fewer
 * than this many bytes past its ring's head are written, a
 * PREFAULT_PIECE_BYTES fill at a time: at most 2 MiB ahead, ~18,000 values of
 * 100 B. Resident before the ring reaches them; the idle memory reducer cannot
 * give part of the arena back, so this is what a new cache that stops growing
 * in its first lap holds beyond its values (a cache shed by a bulk load
 * prefaults nothing more).
 */
export const SLOT_CACHE_PREFAULT_AHEAD_BYTES = 1024 * 1024;

/** Buckets of a new small-value cache table (a power of two); it doubles as values arrive. */
export const SLOT_CACHE_INITIAL_TABLE = 1024;

/** Values larger than this are never cached: they would evict many small hot ones. */
export const MAX_CACHED_VALUE_BYTES = 1024 * 1024;

/**
 * With the small-value cache off (slotCacheBytes 0), values smaller than this
 * skip the lru-cache: one positioned read of their record from the page
 * cache costs less CPU than its lookup (kv-server GET, 100k keys, server CPU
 * per request: 100-byte values 3.0 µs uncached vs 3.5 µs cached; 1 KiB 4.1
 * vs 3.6; 4 KiB 8.3 vs 5.8).
 */
export const MIN_CACHED_VALUE_BYTES = 512;

/** Size of one write-buffer chunk; a record larger than this gets a chunk of its own. */
export const WRITE_CHUNK_BYTES = 1024 * 1024;

/**
 * Under `always`, the records buffered while an fsync round runs are handed
 * to the OS when the next round starts, in one write, rather than at the end
 * of each tick (the clients answered by a round come back over several
 * ticks). Past this many buffered bytes a tick's end writes them out as
 * before, so a large round's write overlaps the running fsync.
 */
export const ALWAYS_DEFERRED_FLUSH_BYTES = 64 * 1024;

/**
 * Under `always`, a sync round fsyncs on the event loop (fdatasync, as
 * Redis's beforeSleep does), not in the thread pool, when no read was
 * answered since the last round started, the last round took at most
 * ALWAYS_INLINE_FSYNC_MAX_MS and it covers at most
 * ALWAYS_INLINE_FSYNC_MAX_BYTES written since the segments' last fsync
 * (Store.syncsInline): the rounds of small writes and nothing else
 * (`kv-bench -t set -P 1`: ~4 KiB). Past the limits the loop would be held
 * too long: the round goes to the pool and the loop keeps reading meanwhile.
 */
export const ALWAYS_INLINE_FSYNC_MAX_MS = 1;
export const ALWAYS_INLINE_FSYNC_MAX_BYTES = 32 * 1024;

/**
 * Under `always`, the active segment's file is kept this many bytes of
 * written zeros ahead of its data (Segment.zeroAhead). An append that grows
 * the file changes its size, so every fdatasync also wrote the inode, a
 * second synchronous I/O; records written over zeros already durable change
 * no metadata. On this VM's ext4 an fdatasync of a 4 KiB append took
 * 0.23-0.46 ms and 70-90 µs of CPU, over zeros 0.13-0.17 ms and 41-45 µs.
 * The zeros are written when the data comes within half of this of the
 * file's end (128 KiB at a time: one round in ~30 at `-c 50 -P 1` pays
 * for them, with the inode write, instead of every round) and
 * cut off when the segment is sealed or the store closed; after a crash
 * recovery cuts them as a torn tail.
 */
export const ALWAYS_ZERO_AHEAD_BYTES = 256 * 1024;

/**
 * Flushed write-buffer chunks kept for reuse (8 MiB): a tick of writes fills
 * several chunks under a bulk load, and each one allocated afresh and left
 * to the GC was ~2/3 of the bytes written, garbage the allocator kept as RSS.
 */
export const WRITE_SPARE_CHUNKS = 8;

/**
 * Entries a write tick's undo log (undo-log.ts) keeps room for between
 * ticks (~160 KiB); a larger tick, such as a replica applying megabytes of
 * records at once, gives its room back when it ends.
 */
export const UNDO_KEEP_ENTRIES = 4096;

/** Buckets of a new keydir hash table (a power of two); it doubles as keys arrive. */
export const KEYDIR_INITIAL_CAPACITY = 1024;

/** Keys per bucket at which the keydir hash table doubles (linear probing stays short below 3/4). */
export const KEYDIR_MAX_LOAD = 0.75;

/**
 * The keydir's doubling is incremental (as Redis's dict rehash): the old
 * table's keys move to the new one KEYDIR_REHASH_SLOTS slots at a time, one
 * step every KEYDIR_REHASH_EVERY lookups, writes and deletes, so no single
 * call rehashes the whole table (in one call, a doubling held the event loop
 * ~170 ms at 786k keys and ~2 s at 6.3M on the 2-core test machine). 128
 * slots (~10 us) every 16 calls: with slots mostly live, the old table is
 * done after an eighth of its keys in calls, well before the new table fills
 * (three quarters), and before a load of 1M keys ends (the memory
 * benchmark's). An evacuation of the key arena (keydir.ts) takes the same
 * steps.
 */
export const KEYDIR_REHASH_SLOTS = 128;
export const KEYDIR_REHASH_EVERY = 16;

/**
 * And when calls are few (an idle server), the store's timer moves buckets
 * for KEYDIR_REHASH_TIMER_MS every KEYDIR_REHASH_TIMER_INTERVAL_MS, so the
 * old table's memory is given back anyway (Redis's activerehashing: 1 ms
 * every 100 ms).
 */
export const KEYDIR_REHASH_TIMER_MS = 1;
export const KEYDIR_REHASH_TIMER_INTERVAL_MS = 100;

/**
 * Most keys Keydir.reserve sizes the hash table for ahead of time (a 256 MiB
 * table of 4-byte buckets): recovery's estimate, the hint files' entry counts, may count a key
 * once per segment, and past this the table grows by doubling as it fills.
 */
export const KEYDIR_MAX_RESERVE_KEYS = 2 ** 25;

/**
 * Bits of a keydir table bucket that hold its slot + 1 (keydir.ts); the other
 * 32 - this hold the top bits of the key's hash, which reject a different
 * key without reading its record (all but 1 in 64). Past 2^26 - 2 keys the
 * field widens by a bit (a table rebuild), its tag narrowing.
 */
export const KEYDIR_SLOT_BITS = 26;

/** Keydir key bytes are stored in chunks of this size; a key never straddles two (MAX_KEY_BYTES fits). */
export const KEYDIR_ARENA_CHUNK_BYTES = 1024 * 1024;

/**
 * Key bytes a keydir slot record holds inline (keydir.ts): a key up to this
 * long is compared and stored with no read of the key arena, and a longer
 * key keeps only its bytes past these in the arena. A multiple of 4.
 */
export const KEYDIR_INLINE_KEY_BYTES = 16;

/** Buckets Keydir.warmRecords reads from a hash's home looking for its entry (a hit takes ~1.5–2.5 on average). */
export const KEYDIR_WARM_PROBES = 8;

/** Keydir slots are allocated in pages of this many (typed arrays, no doubling waste). */
export const KEYDIR_PAGE_SLOTS = 65536;

/** Segment ids are u16 in the keydir: at most this many segments are open at once. */
export const MAX_SEGMENTS = 65535;

/** Keys with an expiry examined per active-expiry pass (Redis samples 20 per pass; we walk them in bounded steps). */
export const EXPIRE_SWEEP_KEYS = 2000;

/** Period of the active-expiry pass. */
export const EXPIRE_SWEEP_INTERVAL_MS = 1000;

/** Largest number of keys one scan page may return. */
export const MAX_SCAN_COUNT = 100_000;

/**
 * While the store has no active segment to append to (creating one failed,
 * e.g. ENOSPC at open), a write tries again at most this often (ms); the
 * writes in between are refused at once. Small: it only costs an open, a
 * 32-byte write and an unlink per attempt.
 */
export const ACTIVE_SEGMENT_RETRY_MS = 200;

/**
 * An error that repeats on every tick (a full disk fails every write) is
 * logged in full once, then in one line per this interval counting the
 * failures since (repeated-error-log.ts); Redis's AOF write errors: 30 s.
 */
export const REPEATED_ERROR_LOG_MS = 30_000;

/**
 * Damaged records a store remembers having logged (a read that meets one
 * logs it once, at error). Past this many, each further one is counted but
 * no longer logged one by one (a badly damaged disk must not flood the log
 * nor grow memory without bound).
 */
export const MAX_LOGGED_CORRUPT_RECORDS = 10_000;

/**
 * The active segment's hint is built in memory as records are appended
 * (hint-builder.ts), in chunks of this size; an entry never straddles two
 * (one of MAX_KEY_BYTES fits).
 */
export const HINT_CHUNK_BYTES = 256 * 1024;

/**
 * A hint builder's first chunks are buffers of their own, and are kept for the
 * next active segment (a fresh buffer costs a page fault per 4 KiB); a hint
 * past them (a segment of more than ~3 MiB of 16-byte keys) takes its chunks
 * and its entry arrays from slabs (slabs.ts) the builders share, recycled
 * once the segment's hint file is written (HINT_RECYCLED_CHUNKS_MAX).
 */
export const HINT_SPARE_CHUNKS = 4;

/**
 * Slab chunks and entry arrays of released hint builders are kept for the
 * next ones (hint-builder.ts `recycle`), up to this many chunks (64 MiB: the
 * hint of a full default segment of the smallest records): a new builder
 * carved a fresh 36 MiB slab (SLAB_BYTES) and grew fresh arrays, which V8
 * counts in its external memory whole, so a SET load ran a mark-compact every
 * ~1.5 segments. The idle memory reducer drops them.
 */
export const HINT_RECYCLED_CHUNKS_MAX = 256;

/**
 * Chunks a hint builder keeps prefaulted ahead of its use (prefault.ts) once
 * it is past its spare ones: one, ~6,000 entries of 16-byte keys, far more
 * than are added while the next is filled (~1-3 ms). It is carved from the
 * builders' slab and recycled with the builder's chunks when it is
 * released (256 KiB resident after a load goes idle; the idle reducer
 * cannot give part of a live slab back).
 */
export const HINT_PREFAULT_CHUNKS = 1;

/**
 * A buffer prefaulted ahead of a growth (prefault.ts `PrefaultAhead`: the
 * hint's entry arrays, the small-value cache's table) is filled in pieces of
 * this size, one queued after the other, so a hint chunk or a keydir record
 * page waits for one piece (~3-4 ms), not for megabytes; the small-value
 * cache's arena is filled a piece at a time. Not smaller: a fill's successor
 * starts only on an event-loop turn after it completed, so with 256 KiB
 * pieces the pool fell behind a 1M-key load's fresh pages (engine6: 12-16 vs
 * 10-11 event-loop faults per 1000 sets, one fill at a time then).
 */
export const PREFAULT_PIECE_BYTES = 1024 * 1024;

/**
 * Prefault fills (prefault.ts) running in libuv's thread pool at once, of
 * its 4 threads (fsyncs and file reads keep the others). With one, the
 * thread sat idle from each fill's end until the event loop got to its
 * completion and started the next; with two, one runs while the other's
 * completion waits (engine7, 1M new keys, 6 alternating pairs: event-loop
 * faults per 1000 sets 0.79x, main-thread CPU per set 0.95x in batch() and
 * in the promise-per-set row; `always` fsync latency checked unchanged).
 */
export const PREFAULT_FILLS_IN_FLIGHT = 2;

/**
 * Keydir record pages (KEYDIR_PAGE_SLOTS records, 1.75 MiB) kept prefaulted
 * ahead of the slots that need them (prefault.ts): one, resident until the
 * next page is started or the idle memory reducer drops it.
 */
export const KEYDIR_PREFAULT_PAGES = 1;

/**
 * Share of the key count that doubles the keydir's table (KEYDIR_MAX_LOAD of
 * its buckets) from which the table the doubling takes is prefaulted
 * (keydir.ts, prefault.ts): the doubling's new table was written first by
 * the event loop, every page of it (a load of 1M new keys: 1+2+4+8 MiB,
 * ~3.6 faults per 1000 sets, 11-16 µs each on the benchmark VM). From then
 * to the doubling, the next table (twice the current one) is resident
 * unused, unless the idle memory reducer drops it.
 */
export const KEYDIR_TABLE_PREFAULT_FROM = 0.75;

/** Smallest next keydir table prefaulted (a smaller one is a few pages). */
export const KEYDIR_TABLE_PREFAULT_MIN_BYTES = 256 * 1024;

/**
 * Size of a slab (slabs.ts): above glibc's largest dynamic mmap threshold
 * (32 MiB on 64-bit), so malloc always maps it on its own. Only the pages
 * written become resident.
 */
export const SLAB_BYTES = 36 * 1024 * 1024;

/**
 * The in-progress hint squeezes out the entries of overwritten records once
 * they take this many bytes and more than the entries kept: its memory stays
 * within about twice the hint's size, at an amortised copy per entry.
 */
export const HINT_COMPACT_MIN_BYTES = 1024 * 1024;

/**
 * Bytes of hint written per step when a segment is sealed (copy, CRC, write),
 * one step per turn of the event loop. At 256 KiB a step held the loop
 * ~1.4 ms in the server's first seal (its code not yet optimised), more than
 * half of pipeline 1's p99; at 64 KiB a step takes ~0.2–0.4 ms (BENCHMARKS.md,
 * "seal turns"). Must hold a hint entry of the longest key.
 */
export const HINT_WRITE_STEP_BYTES = 64 * 1024;

/**
 * Hint-builder entries, kept or dropped, looked at per step of the same
 * writing: where most entries are dropped (a segment's oldest, their keys
 * written again later in it) a step's bytes come from many more entries
 * (65k for the first 16 KiB with 100k keys written at random: ~2 ms).
 */
export const HINT_WRITE_STEP_ENTRIES = 4096;

/**
 * Sparse-index entries (12 bytes each) encoded and written per step when a
 * segment is sealed: a 64 MiB segment's ~16k entries, encoded in one turn,
 * held the loop ~3.5 ms in the server's first seal.
 */
export const INDEX_WRITE_STEP_ENTRIES = 2048;

/**
 * Compaction runs with fewer input bytes than this rewrite on the event loop
 * (in ~1 ms steps) even with the real file system, instead of in the rewrite
 * process (rewrite-process.ts): starting a worker thread held the event loop
 * 10–24 ms and took 265–336 ms to come online on the busy 2-core machine
 * (measured 2026-12-05), more than such a run's few ms of work; the process,
 * started with the store, costs a message round trip and its copies.
 */
export const COMPACTION_WORKER_MIN_BYTES = 4 * 1024 * 1024;

/**
 * A clean close seals the active segment when it holds this many bytes of
 * records or more, so the next open loads it from its hint instead of
 * scanning it (Store.close). Below this the scan is cheap (~10 ms) and a
 * small sealed segment per restart is not worth it.
 */
export const SEAL_AT_CLOSE_MIN_BYTES = 4 * 1024 * 1024;

/**
 * Nice value of the compaction's rewrite process, every thread of it (Linux;
 * the server keeps its own: thread-priority.ts). As RocksDB lowers its
 * compaction threads' CPU priority: the event loop must win the CPU whenever
 * it has work. Processes of one session share one scheduling group
 * (autogroup), so an unlowered rewrite took the event loop's CPU:
 * foreground p50 went from ~3 to ~100 ms during compaction on the loaded
 * 2-core test machine (measured with the rewrite in a worker thread).
 */
export const COMPACTION_WORKER_NICE = 19;

/**
 * CPU time, in ms, the compaction worker may spend ahead of its budget
 * (`compaction.cpuShare`, compaction/pacer.ts) after it has slept or waited:
 * a few of its ~1 ms steps, so a paced worker still runs in short bursts
 * rather than sleeping after every step, and never in long ones.
 */
export const COMPACTION_CPU_BURST_MS = 5;
