/**
 * The compaction options and their defaults (resolved with the other store
 * options in ../options.ts). Types and constants only: imported by the
 * store's options without pulling in the compactor.
 */
import type { CompactionPolicyOptions } from './policy.js';

/** Named steps of the swap protocol (swap.ts); a test hook can crash the process at each. */
export type SwapStep =
  | 'outputs-written'
  | 'verified'
  | 'committed'
  | 'files-swapped'
  | 'keydir-swapped'
  | 'done';

export interface CompactionOptions extends CompactionPolicyOptions {
  /** Compact automatically by policy. Default true. */
  auto: boolean;
  /** How often the policy is consulted, in ms. Default 10,000. */
  checkIntervalMs: number;
  /** Least time between the starts of two automatic runs, in ms. Default 60,000. */
  minIntervalMs: number;
  /** Longest backoff after failures, in ms. Default 600,000. */
  maxBackoffMs: number;
  /**
   * Share of one CPU core the rewrite's worker thread may use, averaged over
   * its run, in (0, 1]; 1 is unthrottled. Default 1 (as Kafka's cleaner I/O
   * limit defaults to unlimited): at 0.25, bench:compaction's foreground p99
   * during compaction was not measurably better on the shared 2-core machine
   * (BENCHMARKS.md "Compaction"), and the worker's own CPU is a small part of a
   * compaction's. Lower caps the rewrite's CPU on a busy machine, for longer
   * compactions. Measured from the thread's own CPU time (pacer.ts).
   */
  cpuShare: number;
  /** Test hook: called at each named step of the swap protocol. */
  onStep?: (step: SwapStep) => void;
}

export const DEFAULT_COMPACTION: CompactionOptions = {
  auto: true,
  minDeadRatio: 0.5,
  minDeadBytes: 16 * 1024 * 1024,
  maxDeadBytes: 1024 * 1024 * 1024,
  checkIntervalMs: 10_000,
  minIntervalMs: 60_000,
  maxBackoffMs: 600_000,
  cpuShare: 1,
};
