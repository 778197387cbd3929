/**
 * A sorted view of the keydir's keys for prefix/range scans, built on the
 * first scan and kept up to date cheaply after that: new keys go to a small
 * `added` list that is sorted on demand and merged with the big sorted array
 * as the scan walks, and folded into it when it grows past 1/8 of it.
 * Deleted keys are filtered against the keydir as the scan walks, and purged
 * at the next fold. Keys compare as latin1 strings, i.e. by their bytes.
 *
 * Cursors are the last key returned: a scan returns every key that exists for
 * its whole duration exactly once, in order, whatever happens in between.
 */

function lowerBound(a: readonly string[], key: string): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class KeyIndex {
  private sorted: string[];
  private added: string[] = [];
  private addedSorted = true;
  private deletes = 0;

  constructor(
    keys: Iterable<string>,
    private readonly isLive: (key: string) => boolean,
  ) {
    this.sorted = Array.from(keys).sort();
  }

  noteInsert(key: string): void {
    this.added.push(key);
    this.addedSorted = false;
  }

  noteDelete(): void {
    this.deletes++;
  }

  /**
   * Up to `count` live keys k with after < k (or start ≤ k when `after` is
   * undefined), k < end, k starting with `prefix`. `more` is true when keys
   * may remain. With `filter`, `count` live keys are examined and only those
   * passing it are returned (Redis's SCAN COUNT with MATCH): resume after
   * `last`, the last key examined.
   */
  page(opts: {
    after?: string;
    start?: string;
    end?: string;
    prefix?: string;
    count: number;
    filter?: (key: string) => boolean;
  }): {
    keys: string[];
    more: boolean;
    last: string | undefined;
  } {
    this.maintain();
    const prefix = opts.prefix ?? '';
    let from = opts.start ?? '';
    if (prefix > from) from = prefix;
    const after = opts.after;
    const a = this.sorted;
    const b = this.added;
    let i = lowerBound(a, after !== undefined && after >= from ? after : from);
    let j = lowerBound(b, after !== undefined && after >= from ? after : from);
    const keys: string[] = [];
    const filter = opts.filter;
    let examined = 0;
    let lastExamined: string | undefined;
    let last: string | undefined;
    while (i < a.length || j < b.length) {
      const x = a[i];
      const y = b[j];
      let k: string;
      if (y === undefined || (x !== undefined && x <= y)) {
        k = x!;
        i++;
      } else {
        k = y;
        j++;
      }
      if (k === last || (after !== undefined && k <= after)) continue;
      if (opts.end !== undefined && k >= opts.end) return { keys, more: false, last: lastExamined };
      if (!k.startsWith(prefix)) return { keys, more: false, last: lastExamined };
      last = k;
      if (!this.isLive(k)) continue;
      if (examined === opts.count) return { keys, more: true, last: lastExamined };
      examined++;
      lastExamined = k;
      if (filter === undefined || filter(k)) keys.push(k);
    }
    return { keys, more: false, last: lastExamined };
  }

  private maintain(): void {
    if (!this.addedSorted) {
      this.added.sort();
      this.addedSorted = true;
    }
    const foldAt = Math.max(4096, this.sorted.length >>> 3);
    if (this.added.length <= foldAt && this.deletes <= foldAt) return;
    const a = this.sorted;
    const b = this.added;
    const merged: string[] = [];
    let i = 0;
    let j = 0;
    let last: string | undefined;
    while (i < a.length || j < b.length) {
      const x = a[i];
      const y = b[j];
      let k: string;
      if (y === undefined || (x !== undefined && x <= y)) {
        k = x!;
        i++;
      } else {
        k = y;
        j++;
      }
      if (k !== last && this.isLive(k)) merged.push(k);
      last = k;
    }
    this.sorted = merged;
    this.added = [];
    this.deletes = 0;
  }
}
