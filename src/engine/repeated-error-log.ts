/**
 * The log of an error that can repeat on every tick: a full disk fails every
 * write. The first failure is logged in full (with its stack); while it goes
 * on, one line at most every REPEATED_ERROR_LOG_MS counts the failures since;
 * the first success after it says so. A full disk must not also fill the log
 * (which is often on the same disk) with a stack per tick. Redis rate-limits
 * its AOF write errors the same way (AOF_WRITE_LOG_ERROR_RATE, 30 s).
 */
import type { Logger } from 'pino';
import type { Clock } from './clock.js';
import { REPEATED_ERROR_LOG_MS } from './limits.js';

export class RepeatedErrorLog {
  private failing = false;
  /** Failures since the operation last worked. */
  private failures = 0;
  /** Failures not yet counted in a line, and when the last line was written. */
  private sinceLine = 0;
  private lineAt = 0;

  constructor(
    private readonly log: Logger,
    private readonly clock: Clock,
    /** What failed, as the log line says it: 'a write to the log'. */
    private readonly what: string,
    /** What failing means for the caller: 'the writes of this tick are refused'. */
    private readonly consequence: string,
  ) {}

  failed(err: unknown): void {
    const now = this.clock.now();
    this.failures++;
    if (!this.failing) {
      this.failing = true;
      this.lineAt = now;
      this.log.error({ err }, `${this.what} failed; ${this.consequence}`);
      return;
    }
    this.sinceLine++;
    if (now - this.lineAt < REPEATED_ERROR_LOG_MS) return;
    const message = err instanceof Error ? err.message : String(err);
    const seconds = Math.round((now - this.lineAt) / 1000);
    this.log.error(
      { failures: this.sinceLine, error: message },
      `${this.what} failed ${this.sinceLine} more times in the last ${seconds} s: ${message}`,
    );
    this.sinceLine = 0;
    this.lineAt = now;
  }

  /** Called after each success: logs the recovery once; otherwise one comparison. */
  succeeded(): void {
    if (!this.failing) return;
    this.log.warn({ failures: this.failures }, `${this.what} works again after ${this.failures} failures`);
    this.failing = false;
    this.failures = 0;
    this.sinceLine = 0;
  }
}
