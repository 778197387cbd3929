/**
 * Frees the disk blocks of compacted-away segment files a few MiB at a time,
 * with the event loop running in between.
 *
 * Why: the swap unlinks the inputs (or renames outputs over them) while the
 * store still has them open, so the file system frees their blocks at the
 * last close, synchronously: measured on ext4, ~15 ms per 64 MiB segment,
 * and the compactor released its inputs in one loop (80–110 ms for five
 * inputs; the benchmark's hard-linked working copies hid it). Truncating
 * costs ~0.22 ms per MiB freed, so REAP_BYTES per turn keeps each piece
 * near 1 ms.
 *
 * How: `hold` opens each input file once more before its name goes (step 3
 * of the swap), so its blocks outlive the segment's own close; once the
 * segment is closed (its last reader has let go: nothing can read it again)
 * `closed` queues it, and the held descriptor is truncated step by step to
 * zero, then closed. Only a retired, closed segment whose file has no name
 * left anywhere (link count 0: not hard-linked elsewhere) is ever truncated;
 * whatever else is held is closed untouched (`stop`), which frees it at once
 * as before. Truncation happens long after the directory fsync that made
 * the unlink or rename durable, so a crash never finds a truncated file
 * under a name.
 */
import { fstatSync } from 'node:fs';
import type { Logger } from 'pino';
import { type Fs, nodeFs } from '../fs.js';
import type { Segment } from '../segment.js';
import type { Store } from '../store.js';
import { fullTurn } from './loop.js';
import { traced } from './trace.js';

/** Bytes freed per truncation, between two event-loop turns (~0.9 ms on ext4). */
const REAP_BYTES = 4 * 1024 * 1024;

export class Reaper {
  /** Descriptors held on inputs whose segment is not closed yet. */
  private readonly held = new Map<Segment, number>();
  /** Descriptors of closed segments, to truncate then close. */
  private readonly queue: number[] = [];
  private running: Promise<void> | undefined;

  constructor(
    private readonly fs: Fs,
    private readonly log: Logger,
  ) {}

  /** Before `seg`'s file name is unlinked or replaced: keeps the file's blocks until `closed`. */
  hold(seg: Segment): void {
    if (this.held.has(seg)) return;
    try {
      this.held.set(seg, this.fs.open(seg.path, 'r+'));
    } catch {
      // Not held: its blocks are freed at the segment's close, as without a reaper.
    }
  }

  /**
   * The end of a swap, as `store.retireSegments` does it (the inputs leave
   * the segment table and close when their readers let go), and once each is
   * closed its blocks are freed step by step.
   */
  retire(store: Store, inputs: readonly Segment[]): void {
    for (const seg of inputs) {
      store.segments[seg.id] = undefined;
      seg.retire(false, (err) => {
        if (err) this.log.warn({ err, file: seg.name }, 'closing a compacted segment failed');
        this.closed(seg);
      });
    }
  }

  /** `seg` was retired and is now closed: no reader is left, its blocks may go. */
  private closed(seg: Segment): void {
    const fd = this.held.get(seg);
    if (fd === undefined) return;
    this.held.delete(seg);
    this.queue.push(fd);
    this.kick();
  }

  /** Starts freeing the queue unless that is under way. `running` is cleared once the run has settled, never inside it (a run with nothing to await finishes before the assignment). */
  private kick(): void {
    if (this.running || this.queue.length === 0) return;
    this.running = this.run().finally(() => {
      this.running = undefined;
      this.kick();
    });
  }

  private async run(): Promise<void> {
    for (let fd = this.queue.shift(); fd !== undefined; fd = this.queue.shift()) {
      try {
        for (let size = this.fs.size(fd); size > 0 && this.nameless(fd); ) {
          await fullTurn();
          size = Math.max(0, size - REAP_BYTES);
          const t = performance.now();
          this.fs.truncate(fd, size);
          traced('reaper.truncate', t);
        }
      } catch (err) {
        this.log.warn({ err }, 'freeing a compacted segment step by step failed; it is freed at close');
      } finally {
        this.closeQuietly(fd);
      }
    }
  }

  /** Resolves when every closed segment queued so far has been freed. */
  async settle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Frees what is queued, then closes what is still held (segments still open: nothing is truncated). */
  async stop(): Promise<void> {
    await this.settle();
    for (const fd of this.held.values()) this.closeQuietly(fd);
    this.held.clear();
  }

  /**
   * Whether the held file has no name left anywhere. The swap removed the
   * segment's own name, but the file may have others (a hard-linked backup,
   * `cp -al`, the benchmark's working copies): truncating it would destroy
   * them, and closing it frees nothing then anyway. Only the OS file system
   * can tell (link count); on any other Fs nothing is truncated.
   */
  private nameless(fd: number): boolean {
    return this.fs === nodeFs && fstatSync(fd).nlink === 0;
  }

  private closeQuietly(fd: number): void {
    try {
      this.fs.close(fd);
    } catch {
      // already closed
    }
  }
}
