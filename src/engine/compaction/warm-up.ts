/**
 * The rewrite process's warm-up: right after it starts with the store
 * (RewriteProcess.prewarm), it rewrites a small synthetic segment a few
 * times in a temporary directory, so that V8 has compiled and optimised the
 * rewrite's code before the first real rewrite, not during it.
 *
 * Why (issue 15, the CPU the rewrite takes beside the event loop): the
 * child runs V8 with --single-threaded (rewrite-process.ts), so its JIT
 * compiles on its only thread, and a process's first rewrite paid for all
 * of it. Measured on bench:compaction --quick's data sets (20 MB, 2 MiB
 * segments, one child, rewrite thread CPU): a first rewrite took ~140 ms
 * (10% live) and ~250 ms (90% live), the fourth ~25 and ~65 ms; V8's
 * --trace-opt showed the scan's functions compiled by TurboFan once or
 * twice each inside the first. The warm-up moves that work to the store's
 * open, at the child's low priority.
 *
 * What it exercises: the same functions with the same object shapes and
 * the same `Fs` (nodeFs: a run on another Fs would leave the call sites
 * polymorphic, or deoptimise them at the first real rewrite). Records of
 * three sizes (both CRC paths of record.ts), dead and live values,
 * tombstones, expired values and batch members; a prefix run and a run
 * that keeps deletions. Its outputs are deleted; if the temporary directory
 * cannot be written, there is no warm-up (the first rewrite pays, as before).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { segmentFile } from '../filenames.js';
import { nodeFs } from '../fs.js';
import { encodeRecord, FLAG_BATCH, FLAG_BATCH_END, FLAG_TOMBSTONE, recordSize } from '../record.js';
import { encodeSegmentHeader, SEGMENT_HEADER_BYTES } from '../segment-header.js';
import { fullTurn } from './loop.js';
import { type RewriteHost, type RewriteJob, rewriteSegments } from './rewrite.js';

/** Records of the synthetic segment. */
const WARM_UP_RECORDS = 6000;
/** Distinct keys among them: each written twice, so about half the records are live. */
const WARM_UP_KEYS = WARM_UP_RECORDS / 2;
/** Value sizes, cycled: below and above record.ts's JS_CRC_MAX_BYTES. */
const WARM_UP_VALUE_BYTES = [60, 400, 1000] as const;
/**
 * maxSegmentBytes of the warm-up's outputs: its ~1.5 MB of live records
 * fill one and start another, and an output's hint outgrows its first
 * buffer, as in real rewrites (paths a smaller warm-up left unvisited, which
 * V8 then deoptimised at the first real rewrite).
 */
const WARM_UP_SEGMENT_BYTES = 1024 * 1024;
/** Rewrites of the segment: each optimisation V8 makes during one is used (or redone) in the next. */
const WARM_UP_ROUNDS = 4;

/** The synthetic segment's bytes and its [slot, position] pairs of live records (the last value of each key). */
function syntheticSegment(): { bytes: Buffer; live: Uint32Array } {
  let size = SEGMENT_HEADER_BYTES;
  const valueBytes = (i: number) => WARM_UP_VALUE_BYTES[i % WARM_UP_VALUE_BYTES.length]!;
  const keyOf = (i: number) => `warm-up-key-${String(i % WARM_UP_KEYS).padStart(6, '0')}`;
  for (let i = 0; i < WARM_UP_RECORDS; i++) size += recordSize(keyOf(i).length, valueBytes(i));
  const bytes = Buffer.alloc(size);
  encodeSegmentHeader(0).copy(bytes, 0);
  const value = Buffer.alloc(Math.max(...WARM_UP_VALUE_BYTES), 0x5a);
  const lastAt = new Map<string, number>();
  let at = SEGMENT_HEADER_BYTES;
  for (let i = 0; i < WARM_UP_RECORDS; i++) {
    const key = keyOf(i);
    // Every 13th a deletion, every 11th an expired value, every 7th a batch of two.
    const tombstone = i % 13 === 0;
    const flags = tombstone
      ? FLAG_TOMBSTONE
      : i % 7 === 0
        ? FLAG_BATCH
        : i % 7 === 1
          ? FLAG_BATCH | FLAG_BATCH_END
          : 0;
    const expiresAt = i % 11 === 0 ? 1 : 0;
    const v = tombstone ? undefined : value.subarray(0, valueBytes(i));
    const n = encodeRecord(bytes, at, i, expiresAt, flags, key, v);
    if (tombstone) lastAt.delete(key);
    else lastAt.set(key, at);
    at += n;
  }
  const live: number[] = [];
  let slot = 0;
  for (const position of lastAt.values()) live.push(slot++, position);
  return { bytes: bytes.subarray(0, at), live: Uint32Array.from(live) };
}

/** Runs the warm-up rewrites (module comment); resolves when done, never rejects. */
export async function warmUpRewrite(): Promise<void> {
  let dir: string;
  try {
    dir = mkdtempSync(join(tmpdir(), 'segkv-rewrite-warm-up-'));
  } catch {
    return; // no temporary directory: no warm-up
  }
  try {
    const { bytes, live } = syntheticSegment();
    const name = segmentFile(0);
    writeFileSync(join(dir, name), bytes);
    const host: RewriteHost = { pause: fullTurn, isCancelled: () => false, onProgress: () => {} };
    for (let round = 0; round < WARM_UP_ROUNDS; round++) {
      const fd = nodeFs.open(join(dir, name), 'r');
      try {
        const job: RewriteJob = {
          dir,
          maxSegmentBytes: WARM_UP_SEGMENT_BYTES,
          indexIntervalBytes: 4096,
          prefix: round % 2 === 0,
          now: Date.now(),
          cpuShare: 1,
          inputs: [{ id: 0, name, fd, size: bytes.length }],
          live: [[live.slice()]],
        };
        const o = await rewriteSegments(nodeFs, job, host);
        for (const out of o.outputs) nodeFs.close(out.fd);
      } finally {
        nodeFs.close(fd);
      }
      for (const f of nodeFs.readdir(dir)) if (f !== name) nodeFs.unlink(join(dir, f));
    }
  } catch {
    // A warm-up that fails (a full temporary file system) only leaves the first rewrite unwarmed.
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
