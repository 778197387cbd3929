/**
 * A record run: whole records back to back exactly as a segment holds them
 * (record.ts, format version RECORD_RUN_FORMAT), in strictly increasing
 * offset order — the unit of the raw change feed (FEED {raw: true},
 * protocol/PROTOCOL.md) that a replica appends to its own log as is
 * (Store.applyReplicatedRaw). Kafka's follower fetch ships record batches
 * the same way: bytes off the leader's log, checked and appended by the
 * follower without re-encoding.
 *
 * Nothing here trusts the bytes: `checkRun` checks every header's bounds,
 * every CRC and the offsets' order before anything is applied, so a run
 * damaged on the way (or read from a damaged segment: the primary does not
 * check CRCs when it serves a raw feed) is refused whole with a CORRUPTION
 * error naming the offset, never half applied.
 */
import { KvError } from '../errors.js';
import { MAX_KEY_BYTES } from './limits.js';
import {
  AT_FLAGS,
  checkRecord,
  decodeHeaderInto,
  FLAG_BATCH,
  FLAG_BATCH_END,
  headerSize,
  RECORD_HEADER_BYTES,
  type RecordHeader,
} from './record.js';

/** The record format a run carries (record.ts, version 1); a FEED's start reply names it. */
export const RECORD_RUN_FORMAT = 1;

/** What `checkRun` found. */
export interface RunCheck {
  /** Records in the run. */
  records: number;
  /** Offset of its last record (-1 if none). */
  lastOffset: number;
  /**
   * Bytes from the start that end on a whole batch: a single record, or a
   * batch's records through the one flagged batch end. The rest (a batch cut
   * by a frame boundary) waits for the next run.
   */
  whole: number;
  /** Offset of the last record within `whole` (-1 if none). */
  wholeLastOffset: number;
}

const scratch: RecordHeader = { offset: 0, expiresAt: 0, flags: 0, keyLength: 0, valueLength: 0 };

/**
 * The headers `checkRun` decoded, a row per record in run order (one or
 * more runs back to back), for the append that follows the check to read
 * instead of decoding each header again (Store.applyReplicatedRaw,
 * SegmentLog.appendRun). Reused: `clear` before a new check. Flags and
 * lengths are kept as 32-bit integers, so the header they are read into
 * keeps small-integer fields (as decodeHeaderInto leaves them).
 */
export class RunRows {
  /** Rows held. */
  count = 0;
  /** offset, expiresAt per row. */
  private times = new Float64Array(2 * 1024);
  /** flags, keyLength, valueLength per row. */
  private sizes = new Int32Array(3 * 1024);

  clear(): void {
    this.count = 0;
  }

  push(h: RecordHeader): void {
    const i = this.count;
    if (3 * i + 3 > this.sizes.length) {
      const times = new Float64Array(this.times.length * 2);
      times.set(this.times);
      this.times = times;
      const sizes = new Int32Array(this.sizes.length * 2);
      sizes.set(this.sizes);
      this.sizes = sizes;
    }
    const times = this.times;
    const sizes = this.sizes;
    times[2 * i] = h.offset;
    times[2 * i + 1] = h.expiresAt;
    sizes[3 * i] = h.flags;
    sizes[3 * i + 1] = h.keyLength;
    sizes[3 * i + 2] = h.valueLength;
    this.count = i + 1;
  }

  /** Row `i` into `h`. */
  read(i: number, h: RecordHeader): void {
    const times = this.times;
    const sizes = this.sizes;
    h.offset = times[2 * i]!;
    h.expiresAt = times[2 * i + 1]!;
    h.flags = sizes[3 * i]!;
    h.keyLength = sizes[3 * i + 1]!;
    h.valueLength = sizes[3 * i + 2]!;
  }

  /** Size of row `i`'s record. */
  size(i: number): number {
    const sizes = this.sizes;
    return RECORD_HEADER_BYTES + sizes[3 * i + 1]! + sizes[3 * i + 2]!;
  }

  /** True if row `i`'s record ends its group (a single record, or a batch's end record). */
  endsGroup(i: number): boolean {
    const flags = this.sizes[3 * i]!;
    return (flags & FLAG_BATCH) === 0 || (flags & FLAG_BATCH_END) !== 0;
  }

  /** The row after the group that starts at row `i` (one record, or a batch through its end record). */
  nextGroup(i: number): number {
    while (!this.endsGroup(i)) i++;
    return i + 1;
  }

  /** Bytes of the records of rows [from, to). */
  bytes(from: number, to: number): number {
    let n = 0;
    for (let i = from; i < to; i++) n += this.size(i);
    return n;
  }
}

/**
 * Checks a run in buf[0, buf.length): whole records only, valid headers and
 * CRCs, offsets strictly increasing and all above `after`. Throws a
 * CORRUPTION KvError naming `source` and the first bad record. `rows`, if
 * given, gets each checked record's header (rows of a run that throws are
 * the caller's to drop).
 */
export function checkRun(buf: Buffer, after: number, source: string, rows?: RunRows): RunCheck {
  const end = buf.length;
  let at = 0;
  let last = after;
  let records = 0;
  let whole = 0;
  let wholeLast = -1;
  const h = scratch;
  while (at < end) {
    if (!decodeHeaderInto(buf, at, end, MAX_KEY_BYTES, h)) {
      throw runError(
        source,
        at,
        last,
        end - at < RECORD_HEADER_BYTES ? 'a truncated header' : 'an invalid header',
      );
    }
    const size = RECORD_HEADER_BYTES + h.keyLength + h.valueLength;
    if (at + size > end) throw runError(source, at, last, 'a truncated record');
    if (!checkRecord(buf, at, size))
      throw runError(source, at, last, `a record (offset ${h.offset}) failing its CRC`);
    if (!Number.isSafeInteger(h.offset) || h.offset <= last) {
      throw runError(source, at, last, `offset ${h.offset} out of order`);
    }
    last = h.offset;
    records++;
    at += size;
    rows?.push(h);
    if ((h.flags & FLAG_BATCH) === 0 || (h.flags & FLAG_BATCH_END) !== 0) {
      whole = at;
      wholeLast = last;
    }
  }
  return { records, lastOffset: records > 0 ? last : -1, whole, wholeLastOffset: wholeLast };
}

function runError(source: string, at: number, after: number, what: string): KvError {
  return new KvError(
    'CORRUPTION',
    `${source} holds ${what} at byte ${at} of a record run (after offset ${after}); nothing of the run was applied`,
  );
}

/**
 * Bytes from the start of `buf` that end on a whole batch (see
 * RunCheck.whole), from the headers alone: what a replica applies now,
 * keeping the rest (a batch cut by a frame boundary) for the next run. A run
 * holds whole records only, so a header that does not decode or a record
 * running past the end is damage: the whole run is returned, for `checkRun`
 * to refuse with the reason.
 */
export function wholePrefix(buf: Buffer): number {
  const end = buf.length;
  let at = 0;
  let whole = 0;
  while (at < end) {
    const size = headerSize(buf, at, end, MAX_KEY_BYTES);
    if (size < 0) return end;
    const flags = buf[at + AT_FLAGS]!;
    at += size;
    if (at > end) return end;
    if ((flags & FLAG_BATCH) === 0 || (flags & FLAG_BATCH_END) !== 0) whole = at;
  }
  return whole;
}

/**
 * Joins runs cut at any record boundary (a raw feed's frames end wherever
 * FEED_BATCH_BYTES does, batches included) back into runs that end on whole
 * batches, for a replica to apply. Each part given back is a view of the
 * run pushed, except the one that completes a cut batch: the batch's
 * waiting records and its rest from the new run, copied together (only
 * those bytes). Waiting records are copied, as the pushed run's buffer is
 * not the joiner's to keep.
 */
export class BatchJoiner {
  private pending: Buffer | undefined;

  /** True while a batch's first records wait for the run holding its end record. */
  get waiting(): boolean {
    return this.pending !== undefined;
  }

  /** The parts (0 to 2) of what waited plus `run` that end on whole batches, in order; the rest waits. */
  push(run: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let rest = run;
    if (this.pending !== undefined) {
      const k = groupEnd(run, 0);
      const joined = Buffer.concat([this.pending, run.subarray(0, k)]);
      this.pending = undefined;
      rest = run.subarray(k);
      this.take(joined, out);
    }
    this.take(rest, out);
    return out;
  }

  private take(run: Buffer, out: Buffer[]): void {
    if (run.length === 0) return;
    const whole = wholePrefix(run);
    if (whole < run.length) this.pending = Buffer.from(run.subarray(whole));
    if (whole > 0) out.push(run.subarray(0, whole));
  }
}

/**
 * The end of the group starting at `at`: past one record, or past a batch's
 * records through its end record (a group stays in one segment), from the
 * headers alone. In a checked run that is all; in bytes not yet checked (a
 * batch's rest in the next frame, BatchJoiner) a header that does not
 * decode, or a run that ends first, gives `buf.length`, for `checkRun` to
 * refuse or the next run to complete.
 */
export function groupEnd(buf: Buffer, at: number): number {
  const end = buf.length;
  for (;;) {
    const size = headerSize(buf, at, end, MAX_KEY_BYTES);
    if (size < 0) return end;
    const flags = buf[at + AT_FLAGS]!;
    at += size;
    if (at >= end) return end;
    if ((flags & FLAG_BATCH) === 0 || (flags & FLAG_BATCH_END) !== 0) return at;
  }
}
