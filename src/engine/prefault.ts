/**
 * Buffers whose pages a thread-pool thread wrote first, so that the event
 * loop's first write to them costs no page fault.
 *
 * Why (measured on the benchmark VM, a paravirtualised guest with shadow
 * page tables; /work/coord/reports/engine3.md): a process's first user-mode
 * write to a fresh anonymous page costs 11-16 µs there (30-50 µs when the
 * host is busy), a later write ~40 ns. A page the kernel populated
 * (MAP_POPULATE, or read() into it) costs as much again at its first
 * user-mode write, while a page another thread of the process wrote first
 * costs nothing more. A new key's set touched ~49 fresh pages per 1000 sets,
 * ~20% of its CPU. So the write path's steady allocations of fixed-size
 * units (keydir record pages, hint chunks) are made a step ahead and written
 * once by crypto.randomFill, which runs in libuv's thread pool in user mode:
 * Node's one writer into a caller's buffer off the event loop that needs no
 * Worker (an isolate costs megabytes of RSS).
 *
 * Invariants:
 * - a unit is handed out only after its fill completed, so the pool thread
 *   never writes a byte the event loop has written;
 * - a `zeroed` pool's units come back zero-filled, as a fresh buffer would
 *   (a memset of resident pages, ~0.1 ms per 2 MiB);
 * - at most `ahead` units of a pool are ready or being filled: memory that is
 *   resident before it is used, which `drop` gives back (the idle memory
 *   reducer, a hint builder's release);
 * - at most PREFAULT_FILLS_IN_FLIGHT (2) fills at a time in the whole
 *   process, started in the order queued (FIFO), so prefaulting takes at
 *   most two of the pool's four threads from fsyncs and file reads. Two, not
 *   one: with one, the pool thread sat idle from each fill's end until the
 *   event loop got to its completion and started the next (a turn later),
 *   and fell behind a load of new keys.
 *
 * `PrefaultAhead` holds one buffer made before a growth the caller sees
 * coming (a hint builder's entry arrays, the small-value cache's table at
 * their next doubling), under the same invariants; it is filled in pieces of
 * PREFAULT_PIECE_BYTES queued one after another, so the fills of pool units
 * run between them instead of waiting for megabytes.
 *
 * Only the event loop calls it.
 */
import { randomFill } from 'node:crypto';
import { PREFAULT_FILLS_IN_FLIGHT, PREFAULT_PIECE_BYTES } from './limits.js';

interface Fill {
  buf: Buffer;
  done: (ok: boolean) => void;
}

/** Fills waiting for a place in flight. */
const queue: Fill[] = [];
/** Fills in flight (randomFill running in the pool), at most PREFAULT_FILLS_IN_FLIGHT. */
let inFlight = 0;

/** @internal Fills running in the thread pool now (tests). */
export function prefaultFillsInFlight(): number {
  return inFlight;
}

function startNextFill(): void {
  const next = queue.shift();
  if (next === undefined) return;
  inFlight++;
  randomFill(next.buf, (err) => {
    inFlight--;
    next.done(err === null);
    startNextFill();
  });
}

/**
 * Writes every byte of `buf` from the thread pool (random bytes), after the
 * fills queued before it; `done(ok)` runs on the event loop once it has. The
 * caller must not touch `buf` until then.
 */
export function prefault(buf: Buffer, done: (ok: boolean) => void): void {
  queue.push({ buf, done });
  if (inFlight < PREFAULT_FILLS_IN_FLIGHT) startNextFill();
}

export class PrefaultPool {
  private ready: Buffer[] = [];
  /** Units of this pool queued or being filled. */
  private pending = 0;
  /** Bumped by drop: a fill of an earlier generation is discarded when it completes. */
  private generation = 0;

  /**
   * `carve()`: a fresh unit (zero-filled when `zeroed`: it is what take()
   * hands out while no prefaulted unit is ready). `ahead`: units kept ready
   * or being filled.
   */
  constructor(
    private readonly carve: () => Buffer,
    private readonly ahead: number,
    private readonly zeroed: boolean,
  ) {}

  /** Units ready now (tests). */
  get readyCount(): number {
    return this.ready.length;
  }

  /** Starts the fills of the units the next takes will want (before the first take). */
  warm(): void {
    this.topUp();
  }

  /** A unit: a prefaulted one when ready, else a fresh one; then tops the pool up. */
  take(): Buffer {
    const b = this.ready.pop();
    this.topUp();
    if (b === undefined) return this.carve();
    if (this.zeroed) b.fill(0);
    return b;
  }

  /** The ready units (for reuse elsewhere), forgetting them and any still being filled. */
  drain(): Buffer[] {
    const ready = this.ready;
    this.drop();
    return ready;
  }

  /** Forgets the ready units and any still being filled (their pages go back once collected). */
  drop(): void {
    this.ready = [];
    this.pending = 0;
    this.generation++;
  }

  private topUp(): void {
    while (this.ready.length + this.pending < this.ahead) {
      const buf = this.carve();
      const generation = this.generation;
      this.pending++;
      prefault(buf, (ok) => {
        if (generation !== this.generation) return;
        this.pending--;
        if (ok) this.ready.push(buf); // a failed fill (none expected): the unit is left to the GC
      });
    }
  }
}

/**
 * One buffer prefaulted ahead of a known need (see the file header): `start`
 * it with the buffer the next growth will take; `take` hands it out only if
 * its fill completed (zero-filled when `zeroed`), else undefined and the
 * caller makes a fresh one. Either way it is forgotten then: a fill still
 * running writes into a buffer nobody uses any more.
 */
export class PrefaultAhead {
  private buf: Buffer | undefined;
  private ready = false;
  /** Bumped whenever the buffer is forgotten: a piece of an earlier one stops the chain. */
  private generation = 0;

  constructor(private readonly zeroed: boolean) {}

  /** Whether a buffer is being filled or ready. */
  get started(): boolean {
    return this.buf !== undefined;
  }

  /** Whether the buffer's fill completed (tests). */
  get isReady(): boolean {
    return this.ready;
  }

  /** Starts filling `buf` (forgetting any earlier one). The caller must not touch it. */
  start(buf: Buffer): void {
    this.drop();
    this.buf = buf;
    const generation = this.generation;
    const next = (from: number): void => {
      if (generation !== this.generation) return;
      if (from >= buf.length) {
        this.ready = true;
        return;
      }
      const to = Math.min(buf.length, from + PREFAULT_PIECE_BYTES);
      prefault(buf.subarray(from, to), (ok) => {
        if (ok) next(to);
        else if (generation === this.generation) this.drop(); // none expected: the buffer is left to the GC
      });
    };
    next(0);
  }

  /** The buffer if its fill completed, else undefined; forgotten in both cases. */
  take(): Buffer | undefined {
    const b = this.ready ? this.buf : undefined;
    this.drop();
    if (b !== undefined && this.zeroed) b.fill(0);
    return b;
  }

  /** Forgets the buffer, ready or being filled (its pages go back once collected). */
  drop(): void {
    this.buf = undefined;
    this.ready = false;
    this.generation++;
  }
}
