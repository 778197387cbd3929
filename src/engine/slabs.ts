/**
 * Slabs: buffers carved out of SLAB_BYTES buffers, which glibc's malloc always
 * maps on their own. Big buffers that a long load allocates and drops (the
 * active segment's hint, ~20 MiB for a 64 MiB segment) would otherwise come
 * from the brk heap once glibc's dynamic mmap threshold has risen (it rises to
 * the size of any mapped buffer freed, up to 32 MiB): freed there, they stay
 * resident between the live buffers allocated after them (ARCHITECTURE.md
 * "Server memory"). A slab's pages become resident only when written, all of
 * them go back to the OS when the GC frees the slab (once nothing carved from
 * it is referenced), and freeing a buffer above 32 MiB never raises the
 * threshold.
 */
import { SLAB_BYTES } from './limits.js';

/** glibc's initial mmap threshold (M_MMAP_THRESHOLD, 128 KiB): smaller buffers come from the brk heap. */
const MMAP_FROM_BYTES = 128 * 1024;
/** glibc's largest dynamic mmap threshold on 64-bit: a mapped buffer freed above it never raises the threshold. */
const THRESHOLD_MAX_BYTES = 32 * 1024 * 1024;

/**
 * Bytes of live big ArrayBuffers that were never written: a table buffer's
 * tail past its table, a slab's bytes not taken yet, an own buffer's tail
 * past its size, the small-value cache's arena past the furthest its ring
 * has reached. V8 counts them in its external memory at full length, but
 * untouched pages are not resident, and they hold nothing: `unwrittenBytes`
 * is subtracted from the memory figures (INFO `used_memory`, the idle memory
 * reducer's growth check). A buffer's share is forgotten when the GC frees it.
 */
let unwritten = 0;

/** A buffer's share of `unwritten`. */
export interface UnwrittenShare {
  bytes: number;
}

const unwrittenShares = new FinalizationRegistry<UnwrittenShare>((share) => {
  unwritten -= share.bytes;
});

/** Counts `bytes` of `buffer` as never written until `written` says otherwise or the GC frees the buffer. */
export function countUnwritten(buffer: ArrayBufferLike, bytes: number): UnwrittenShare {
  const share = { bytes };
  unwritten += bytes;
  unwrittenShares.register(buffer, share);
  return share;
}

/** `n` bytes of a share are now in use. */
export function written(share: UnwrittenShare, n: number): void {
  share.bytes -= n;
  unwritten -= n;
}

/** Bytes of live big buffers that were never written (see `unwritten`). */
export function unwrittenBytes(): number {
  return unwritten;
}

/**
 * A buffer of `n` bytes whose ArrayBuffer is at least SLAB_BYTES long, so
 * that malloc maps it alone and freeing it never raises glibc's threshold;
 * the tail costs address space only. For big buffers that come and go (a
 * record larger than a write chunk, a slab's oversized take).
 */
export function ownBuffer(n: number): Buffer {
  if (n >= SLAB_BYTES) return Buffer.allocUnsafeSlow(n);
  const buf = Buffer.allocUnsafeSlow(SLAB_BYTES);
  countUnwritten(buf.buffer, SLAB_BYTES - n);
  return buf.subarray(0, n);
}

/** A WebAssembly memory is a whole number of pages of this size. */
export const WASM_PAGE_BYTES = 64 * 1024;

/** What is used of the WebAssembly global (the tsconfig's lib declares none; `node --jitless` has none). */
declare const WebAssembly:
  | { Memory: new (descriptor: { initial: number; maximum: number }) => { buffer: ArrayBuffer } }
  | undefined;

/**
 * A zero-filled buffer of `bytes` for a table that is replaced as it grows
 * (the keydir's and the small-value cache's). From 128 KiB to 32 MiB it is
 * the buffer of a WebAssembly.Memory of exactly that size: V8 maps it itself
 * (mmap, and munmap once collected), so malloc never sees it and freeing it
 * leaves glibc's threshold where it was (freeing a plain 4 MiB table raised
 * it to 4 MiB, and every buffer up to that size came from the brk heap from
 * then on, where freed ones stay resident: ARCHITECTURE.md "Server
 * memory"); and V8 counts its size in its external memory, not more.
 *
 * Before, such a table was a SLAB_BYTES (36 MiB) ArrayBuffer, mapped alone
 * by malloc for the same reason, and V8 counted 36 MiB a table: a 1M-key
 * load's tables alone passed V8's external-memory trigger every couple of
 * doublings, 9-10 mark-compacts per 1M sets instead of 3 (engine4). That
 * stays the fallback when no wasm memory can be had (`node --jitless` has
 * no WebAssembly; a wasm memory reserves ~10 GiB of address space for its
 * guard regions, which an address-space limit may refuse): its unused tail
 * costs address space only (calloc'd mapped pages are resident once
 * written) and is counted in `unwrittenBytes`.
 */
export function tableBuffer(bytes: number): ArrayBuffer {
  if (bytes < MMAP_FROM_BYTES || bytes > THRESHOLD_MAX_BYTES) return new ArrayBuffer(bytes);
  const mapped = wasmMemoryBuffer(bytes);
  if (mapped !== undefined) return mapped;
  const buffer = new ArrayBuffer(SLAB_BYTES);
  countUnwritten(buffer, SLAB_BYTES - bytes);
  return buffer;
}

/** The zero-filled buffer of a new WebAssembly.Memory of `bytes`, or undefined when none can be had. */
function wasmMemoryBuffer(bytes: number): ArrayBuffer | undefined {
  if (bytes % WASM_PAGE_BYTES !== 0 || typeof WebAssembly !== 'object') return undefined;
  const pages = bytes / WASM_PAGE_BYTES;
  try {
    return new WebAssembly.Memory({ initial: pages, maximum: pages }).buffer;
  } catch {
    return undefined; // RangeError: the address space for its reservation was refused
  }
}

/** A zero-filled Int32Array of `length` over tableBuffer(4 * length). */
export function tableInt32Array(length: number): Int32Array<ArrayBuffer> {
  return new Int32Array(tableBuffer(4 * length), 0, length);
}

export class Slabs {
  private slab: Buffer | undefined;
  private used = 0;
  /** The current slab's bytes not taken yet, as counted in `unwrittenBytes`. */
  private share: UnwrittenShare = { bytes: 0 };

  /**
   * `n` bytes starting at a multiple of 8 in the current slab, or in a new
   * one when they do not fit; more than half a slab gets a buffer of its own
   * of at least SLAB_BYTES (so still a mapping of its own).
   */
  take(n: number): Buffer {
    if (n > SLAB_BYTES / 2) return ownBuffer(n);
    if (this.slab === undefined || this.used + n > SLAB_BYTES) {
      this.slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
      this.used = 0;
      this.share = countUnwritten(this.slab.buffer, SLAB_BYTES);
    }
    const out = this.slab.subarray(this.used, this.used + n);
    const taken = Math.min(Math.ceil(n / 8) * 8, SLAB_BYTES - this.used);
    this.used += taken;
    written(this.share, taken);
    return out;
  }

  /** The slab it carves from now (undefined before the first take and after `drop`). */
  get current(): ArrayBufferLike | undefined {
    return this.slab?.buffer;
  }

  /** Forgets the current slab: the buffers taken keep theirs alive, nothing else does. */
  drop(): void {
    this.slab = undefined;
    this.used = 0;
  }
}
