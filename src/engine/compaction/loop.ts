/**
 * Yielding to the event loop from the compactor's long runs of work.
 *
 * `setImmediate` alone is not always a yield: called from an I/O callback
 * (or from code continuing after an awaited fsync, which resolves in one), the
 * immediate runs in the same loop turn's check phase, before any timer and
 * before the next poll for I/O, so two slices of work run back to back with
 * nothing of the foreground in between (seen as one 13–23 ms stall across
 * the swap's commit and its first keydir slices).
 */

/** Resolves after the event loop has gone through timers and a poll for I/O at least once. */
export function fullTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(() => setImmediate(resolve)));
}
