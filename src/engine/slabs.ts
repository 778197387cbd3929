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

export class Slabs {
  private slab: Buffer | undefined;
  private used = 0;

  /**
   * `n` bytes starting at a multiple of 8 in the current slab, or in a new
   * one when they do not fit; more than half a slab gets a buffer of its own
   * of at least SLAB_BYTES (so still a mapping of its own).
   */
  take(n: number): Buffer {
    if (n > SLAB_BYTES / 2) return Buffer.allocUnsafeSlow(Math.max(n, SLAB_BYTES)).subarray(0, n);
    if (this.slab === undefined || this.used + n > SLAB_BYTES) {
      this.slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
      this.used = 0;
    }
    const out = this.slab.subarray(this.used, this.used + n);
    this.used += Math.ceil(n / 8) * 8;
    return out;
  }

  /** Forgets the current slab: the buffers taken keep theirs alive, nothing else does. */
  drop(): void {
    this.slab = undefined;
    this.used = 0;
  }
}
