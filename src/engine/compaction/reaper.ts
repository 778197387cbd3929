/**
 * Frees the disk blocks of compacted-away segment files off the event loop.
 *
 * Why: the swap unlinks the inputs (or renames outputs over them) while the
 * store still has them open, so the file system frees their blocks at the
 * last close, and it does so in the closing thread: measured on ext4, ~15 ms
 * per 64 MiB segment, and the compactor released its inputs in one loop (a
 * 240 ms stall for the 17 inputs of 1 GiB; the benchmark's hard-linked
 * working copies hid it). Truncating in small steps on the event loop was
 * tried: 4 MiB cost 0.9 ms alone but ~3.7 ms under load (the journal is busy
 * with the outputs' fsyncs), hundreds of stalls instead of one.
 *
 * How: `hold` opens each input file once more before its name goes (step 3
 * of the swap), so the segment's own close, whenever its last reader lets go,
 * frees nothing. Once the segment is closed, the held descriptor is closed
 * asynchronously in the thread pool (node:fs.close: the descriptors of nodeFs
 * are the OS's), one at a time so the store's fsyncs keep most of the pool;
 * on any other Fs (tests' MemFs) it is closed in place. Nothing is ever
 * truncated: a file with another name (a hard-linked backup) is untouched.
 */
import { close as closeInThreadPool } from 'node:fs';
import type { Logger } from 'pino';
import { type Fs, nodeFs } from '../fs.js';
import type { Segment } from '../segment.js';
import type { LogEdit } from '../segment-log.js';

export class Reaper {
  /** Descriptors held on inputs whose segment is not closed yet. */
  private readonly held = new Map<Segment, number>();
  /** Descriptors of closed segments, to close in the thread pool. */
  private readonly queue: number[] = [];
  private running: Promise<void> | undefined;

  constructor(
    private readonly fs: Fs,
    private readonly log: Logger,
  ) {}

  /** Before `seg`'s file name is unlinked or replaced: keeps the file until `retire` has closed the segment. */
  hold(seg: Segment): void {
    if (this.held.has(seg)) return;
    try {
      this.held.set(seg, this.fs.open(seg.path, 'r'));
    } catch {
      // Not held: its blocks are freed at the segment's close, as without a reaper.
    }
  }

  /**
   * The end of a swap: the inputs leave the segment table and close when
   * their readers let go (LogEdit.retireSegments), and once each is closed
   * its held descriptor is closed off the event loop.
   */
  retire(segLog: LogEdit, inputs: readonly Segment[]): void {
    segLog.retireSegments(inputs, (seg) => this.closed(seg));
  }

  /** `seg` was retired and is now closed: no reader is left, its blocks may go. */
  private closed(seg: Segment): void {
    const fd = this.held.get(seg);
    if (fd === undefined) return;
    this.held.delete(seg);
    this.queue.push(fd);
    this.kick();
  }

  /** Starts closing the queue unless that is under way. `running` is cleared once the run has settled, never inside it. */
  private kick(): void {
    if (this.running || this.queue.length === 0) return;
    this.running = this.run().finally(() => {
      this.running = undefined;
      this.kick();
    });
  }

  private async run(): Promise<void> {
    for (let fd = this.queue.shift(); fd !== undefined; fd = this.queue.shift()) {
      if (this.fs !== nodeFs) {
        this.closeQuietly(fd);
        continue;
      }
      const err = await new Promise<NodeJS.ErrnoException | null>((resolve) =>
        closeInThreadPool(fd, resolve),
      );
      if (err) this.log.warn({ err }, 'closing a compacted segment file failed');
    }
  }

  /** Resolves when every closed segment queued so far has been freed. */
  async settle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Frees what is queued, then closes what is still held (segments still open: freed at their own close). */
  async stop(): Promise<void> {
    await this.settle();
    for (const fd of this.held.values()) this.closeQuietly(fd);
    this.held.clear();
  }

  private closeQuietly(fd: number): void {
    try {
      this.fs.close(fd);
    } catch {
      // already closed
    }
  }
}
