/**
 * Store.releaseSpareBuffers (what the server's idle memory reducer calls):
 * the spare write-buffer chunks and their slab are forgotten, and writes made
 * before it (flushed or still in the write buffer), during and after it read
 * back the same, also after a reopen. A flushed chunk is reused with its
 * DataView.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/engine/index.js';
import { removeTempDirs, silentLogger, tempDir } from './helpers.js';

afterAll(removeTempDirs);

const key = (i: number) => `key:${String(i).padStart(12, '0')}`;
const value = (i: number) => Buffer.alloc(100 + (i % 50), i % 251);

describe('Store.releaseSpareBuffers', () => {
  it('keeps every write, buffered or flushed, across releases and a reopen', async () => {
    const dir = tempDir();
    const n = 60_000; // ~9 MiB of records: several write chunks a tick
    let store = await openStore(dir, { fsync: 'never', logger: silentLogger });
    const pending: Promise<boolean>[] = [];
    for (let i = 0; i < n; i++) {
      pending.push(store.set(key(i), value(i)));
      if (i % 20_000 === 10_000) store.releaseSpareBuffers(); // records still in the write buffer
    }
    await Promise.all(pending);
    store.releaseSpareBuffers(); // all flushed: the spares and the slab go
    for (let i = 0; i < n; i += 7) expect(await store.get(key(i))).toEqual(value(i));
    for (let i = 0; i < n; i += 3) await store.set(key(i), value(i + 1)); // fresh chunks from a fresh slab
    store.releaseSpareBuffers();
    for (let i = 0; i < n; i += 5) expect(await store.get(key(i))).toEqual(value(i % 3 === 0 ? i + 1 : i));
    await store.close();
    store = await openStore(dir, { fsync: 'never', logger: silentLogger });
    for (let i = 0; i < n; i += 5) expect(await store.get(key(i))).toEqual(value(i % 3 === 0 ? i + 1 : i));
    await store.close();
  });

  it('a flushed write chunk comes back with its DataView: the next ticks write through the same view', async () => {
    // A view made per tick was a young object stored into old ones at every SET (a write-barrier call each).
    const store = await openStore(tempDir(), { fsync: 'never', logger: silentLogger });
    const views: DataView[] = [];
    for (let i = 0; i < 3; i++) {
      const p = store.set(key(i), value(i));
      views.push(store.active.reservedView);
      await p; // the tick's flush hands its chunk back
    }
    expect(views[0]!.byteLength).toBeGreaterThan(0);
    expect(views[1]).toBe(views[0]);
    expect(views[2]).toBe(views[0]);
    for (let i = 0; i < 3; i++) expect(await store.get(key(i))).toEqual(value(i));
    await store.close();
  });
});
