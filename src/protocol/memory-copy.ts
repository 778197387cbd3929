/**
 * Copies bytes between two places in memory (ArrayBuffers and offsets)
 * without making a view of either. In Node 20, copying part of a buffer
 * with `set` or `Buffer.copy` makes a Uint8Array view of the part first
 * (`copy` reads the `.buffer` getter too): about a hundred bytes of heap per
 * copy, and a server copying a value and a reply per request at pipeline 1
 * brings a scavenge (which stalls a whole round of clients) that much
 * sooner. Node's `buffer` binding has a plain memcpy for ArrayBuffers
 * (`copyArrayBuffer`, what its web streams use); where it is missing, the
 * copy goes through views.
 *
 * The binding aborts the process on a range outside either buffer, so the
 * ranges are checked here first and a bad one throws a RangeError.
 */

type CopyArrayBuffer = (
  to: ArrayBufferLike,
  toOffset: number,
  from: ArrayBufferLike,
  fromOffset: number,
  n: number,
) => void;

/** Node's copyArrayBuffer, or undefined on a Node (or runtime) without it. */
function bindingCopy(): CopyArrayBuffer | undefined {
  try {
    const b = (process as unknown as { binding(name: string): unknown }).binding('buffer') as
      | { copyArrayBuffer?: unknown }
      | undefined;
    return typeof b?.copyArrayBuffer === 'function' ? (b.copyArrayBuffer as CopyArrayBuffer) : undefined;
  } catch {
    return undefined;
  }
}

const viaViews: CopyArrayBuffer = (to, toOffset, from, fromOffset, n) =>
  new Uint8Array(to, toOffset, n).set(new Uint8Array(from, fromOffset, n));

const copy: CopyArrayBuffer = bindingCopy() ?? viaViews;

/** Copies from[fromOffset, fromOffset + n) to to[toOffset, toOffset + n); the two may be the same buffer only if the ranges do not overlap. */
export function copyMemory(
  to: ArrayBufferLike,
  toOffset: number,
  from: ArrayBufferLike,
  fromOffset: number,
  n: number,
): void {
  // Each a uint32 (what the binding checks), and both ranges inside their buffers.
  if (
    n >>> 0 !== n ||
    toOffset >>> 0 !== toOffset ||
    fromOffset >>> 0 !== fromOffset ||
    toOffset + n > to.byteLength ||
    fromOffset + n > from.byteLength
  )
    throw new RangeError(
      `copy of ${n} bytes from offset ${fromOffset} of ${from.byteLength} to offset ${toOffset} of ${to.byteLength} is out of range`,
    );
  copy(to, toOffset, from, fromOffset, n);
}
