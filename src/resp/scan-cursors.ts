/**
 * RESP SCAN cursors. Redis clients treat a cursor as an unsigned decimal
 * integer (redis-py and redis-cli parse it; "0" starts and ends a scan),
 * while a segkv scan resumes after a key (the store's cursor string). Each
 * cursor handed out is a fresh integer mapped to the store's cursor, in one
 * table per store shared by every connection (a client may continue a scan
 * on another pooled connection). The table keeps the newest RESP_SCAN_CURSORS
 * cursors within RESP_SCAN_CURSOR_BYTES; an evicted or unknown cursor (or one
 * from before a restart) is refused with `ERR invalid cursor`, where Redis
 * would resume from a hash-table position.
 */
import type { Store } from '../engine/store.js';
import { RESP_SCAN_CURSOR_BYTES, RESP_SCAN_CURSORS } from '../protocol/limits.js';

export class ScanCursors {
  private readonly table = new Map<string, string>();
  private bytes = 0;
  /** Cursors count up from a random start, so two server runs rarely share one. */
  private next = 1 + Math.floor(Math.random() * 2 ** 40);

  /** The integer cursor (decimal) standing for the store cursor `after`. */
  issue(after: string): string {
    const id = String(this.next++);
    this.table.set(id, after);
    this.bytes += after.length;
    while (this.table.size > RESP_SCAN_CURSORS || this.bytes > RESP_SCAN_CURSOR_BYTES) {
      const [oldest, value] = this.table.entries().next().value as [string, string];
      this.table.delete(oldest);
      this.bytes -= value.length;
    }
    return id;
  }

  /** The store cursor for `id`; undefined if unknown. "0" is the start (the empty store cursor). */
  resolve(id: string): string | undefined {
    if (id === '0') return '';
    return this.table.get(id);
  }
}

const perStore = new WeakMap<Store, ScanCursors>();

export function scanCursorsOf(store: Store): ScanCursors {
  let c = perStore.get(store);
  if (c === undefined) {
    c = new ScanCursors();
    perStore.set(store, c);
  }
  return c;
}
