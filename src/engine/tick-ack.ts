/**
 * The acknowledgement shared by the writes of one tick: they are written to
 * the OS together (Store.flushNow), fsynced together (`always`) and refused
 * together, so one object answers all of them.
 *
 * Two ways to wait for it:
 * - `promise()`: the embedded API's `set`/`delete`/… resolve with it. The
 *   promise is made at the first call only, and settled with the ack.
 * - `listen(listener, tag)`: the server's SET path. The listener is called
 *   synchronously, inside the store's flush, with the tag it gave: no
 *   promise, no closure, no microtask between the write reaching the OS (or
 *   the disk, `always`) and the reply being queued, so the reply leaves in
 *   the same event-loop turn as the flush (Redis acks `everysec` writes the
 *   same way: beforeSleep writes the AOF buffer, then the replies).
 *
 * Invariant: settled at most once, and only by the Store, after what the
 * durability mode promises (DESIGN.md §1): `interval`/`never` once the
 * tick's records were handed to the OS, `always` once they were fsynced; a
 * refused write or fsync settles it failed with the error. Listeners added
 * after it settled are called at once.
 *
 * Only the event loop touches it.
 */

/** Who waits on a TickAck without a promise (a served connection). */
export interface AckListener {
  /** The ack settled (`failed`: refused, with `error`); `tag` is what listen() was given. */
  ackSettled(tag: unknown, failed: boolean, error: unknown): void;
}

/**
 * Listener lists of acks settled, emptied, for the next acks that get a
 * listener. One ack per tick, with a listener per connection that wrote in
 * it: a list made per tick (and grown from empty) was about a tenth of the
 * bytes a server allocates per SET at pipeline 1. Several are kept: under
 * `always`, the acks of the ticks waiting for an fsync round are pending
 * together.
 */
const spareLists: unknown[][] = [];
/** Lists kept at most. */
const SPARE_LISTS = 8;
/** A longer list (a tick of thousands of connections' writes) is left to the GC. */
const SPARE_LIST_ENTRIES = 8192;

export class TickAck {
  settled = false;
  /** Why the writes were refused; undefined when they were acknowledged (or not yet settled). */
  error: unknown = undefined;
  /** Listener and tag pairs, waiting[0, waitingCount); no list until the first listen(). */
  private waiting: unknown[] | undefined = undefined;
  private waitingCount = 0;
  private made: Promise<true> | undefined;
  private resolvePromise: ((v: true) => void) | undefined;
  private rejectPromise: ((err: unknown) => void) | undefined;
  /** Settled refused (reject): `error` says why. Read by a listener that checks a settled ack instead of listening. */
  failed = false;

  /** Calls `listener.ackSettled(tag, error)` when this settles (at once if it has). */
  listen(listener: AckListener, tag: unknown): void {
    if (this.settled) {
      listener.ackSettled(tag, this.failed, this.error);
      return;
    }
    let waiting = this.waiting;
    if (waiting === undefined) waiting = this.waiting = spareLists.pop() ?? [];
    waiting[this.waitingCount++] = listener;
    waiting[this.waitingCount++] = tag;
  }

  /** A promise of the ack: resolves true, or rejects with the error. The same promise at every call. */
  promise(): Promise<true> {
    let p = this.made;
    if (p === undefined) {
      if (this.settled) p = this.failed ? Promise.reject(this.error) : Promise.resolve(true);
      else
        p = new Promise<true>((resolve, reject) => {
          this.resolvePromise = resolve;
          this.rejectPromise = reject;
        });
      this.made = p;
    }
    return p;
  }

  /** @internal The Store: the tick's writes are acknowledged. */
  resolve(): void {
    if (this.settled) return;
    this.settled = true;
    this.resolvePromise?.(true);
    this.notify();
  }

  /** @internal The Store: the tick's writes are refused with `error`. */
  reject(error: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.failed = true;
    this.error = error;
    this.rejectPromise?.(error);
    this.notify();
  }

  private notify(): void {
    const waiting = this.waiting;
    if (waiting === undefined) return;
    const n = this.waitingCount;
    this.waiting = undefined;
    this.waitingCount = 0;
    // A listener may listen to the next tick's ack meanwhile: that one takes another list.
    for (let i = 0; i < n; i += 2)
      (waiting[i] as AckListener).ackSettled(waiting[i + 1], this.failed, this.error);
    // Emptied by overwriting, not `length = 0`, which would drop the storage the next ack reuses.
    waiting.fill(undefined, 0, n);
    if (n <= SPARE_LIST_ENTRIES && spareLists.length < SPARE_LISTS) spareLists.push(waiting);
  }
}
