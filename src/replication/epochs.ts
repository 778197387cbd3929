/**
 * A log's lineage: its id and epoch history (EPOCHS file, epochs-file.ts).
 * Every promotion starts a new epoch at the log's next offset; a replica
 * takes its primary's lineage. When a node rejoins as a replica, the end
 * offset of its last epoch on the new primary (`endOffsetFor`, KIP-101's
 * OffsetsForLeaderEpoch) is where its log may have diverged: it truncates
 * there before following.
 *
 * A missing file on an empty log starts a new lineage (random id, epoch 0 at
 * offset 0); on a non-empty log, or a damaged file, a new id too, so no
 * primary will let this log resume partially (full resync at worst).
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { EPOCHS_FILE } from '../engine/filenames.js';
import type { Store } from '../engine/store.js';
import { writeFileDurably } from './durable-file.js';
import { decodeEpochs, type EpochEntry, encodeEpochs, type Lineage, LOG_ID_BYTES } from './epochs-file.js';

export class EpochHistory {
  lineage: Lineage;

  constructor(
    private readonly store: Store,
    log: Logger,
  ) {
    const fs = store.options.fs;
    const path = join(store.dir, EPOCHS_FILE);
    let lineage: Lineage | undefined;
    if (fs.exists(path)) {
      const decoded = decodeEpochs(fs.readFile(path));
      if (typeof decoded === 'string') {
        log.error(
          { file: EPOCHS_FILE, problem: decoded },
          'the EPOCHS file is damaged; starting a new lineage',
        );
      } else lineage = decoded;
    }
    this.lineage = lineage ?? {
      logId: randomBytes(LOG_ID_BYTES).toString('hex'),
      epochs: [{ epoch: 0, startOffset: 0 }],
    };
    if (!lineage && !store.options.readOnly) this.save();
  }

  get logId(): string {
    return this.lineage.logId;
  }

  get epoch(): number {
    return this.lineage.epochs[this.lineage.epochs.length - 1]!.epoch;
  }

  get epochs(): readonly EpochEntry[] {
    return this.lineage.epochs;
  }

  /**
   * The offset where epoch `epoch` ended in this log: the start of the first
   * later epoch, or `logEnd` if `epoch` is the current one (or later).
   */
  endOffsetFor(epoch: number, logEnd: number): number {
    for (const e of this.lineage.epochs) if (e.epoch > epoch) return e.startOffset;
    return logEnd;
  }

  /**
   * A promotion: a new epoch starts at `offset`. `next` is the epoch the
   * caller was given (cluster mode: the etcd leader key's revision); it is
   * raised to one past the current epoch if it is not above it.
   */
  startEpoch(offset: number, next = this.epoch + 1): number {
    const epoch = Math.max(next, this.epoch + 1);
    this.lineage = { ...this.lineage, epochs: [...this.lineage.epochs, { epoch, startOffset: offset }] };
    this.save();
    return epoch;
  }

  /** Takes a primary's lineage (a replica, after a full resync or a truncation). */
  adopt(lineage: Lineage): void {
    if (lineage.logId === this.lineage.logId && sameEpochs(lineage.epochs, this.lineage.epochs)) return;
    this.lineage = { logId: lineage.logId, epochs: lineage.epochs.map((e) => ({ ...e })) };
    this.save();
  }

  private save(): void {
    writeFileDurably(this.store.options.fs, this.store.dir, EPOCHS_FILE, encodeEpochs(this.lineage));
  }
}

function sameEpochs(a: readonly EpochEntry[], b: readonly EpochEntry[]): boolean {
  return (
    a.length === b.length && a.every((e, i) => e.epoch === b[i]!.epoch && e.startOffset === b[i]!.startOffset)
  );
}
