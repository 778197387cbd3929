/**
 * Hash flooding of the small-value cache (issue 15). The cache's table is
 * indexed by keydir slot, and a client knows its slots: on a store nobody
 * else writes to, its n-th new key takes slot n. It also chooses which
 * slots the cache holds: after a bulk write has shed the write-filled
 * values, the cache keeps what is read. Under an unkeyed slot hash (the
 * Fibonacci hash `Math.imul(slot + 1, 0x9e3779b1) >>> shift`, until it was
 * keyed) the client writes 65,536 keys, reads the ~2,000 whose hash is
 * below 2^32/32, and their homes fall in the table's first 1/32: one probe
 * run holds them all, ~960 probes per hit, and each GET of them and each
 * read that fills the cache walks it. Under a keyed hash the same reads are
 * just reads: as many probes as the same number of random keys take.
 */
import { describe, expect, it } from 'vitest';
import type { SlotCache } from '../../src/engine/slot-cache.js';
import { openStore, type Store } from '../../src/engine/store.js';
import { tempDir } from '../server/spawn.js';
import { silentLogger } from './helpers.js';

const KEYS = 65_536;
/** 1 MiB: the write-fill sheds at half of it (32,768 one-byte values), so the reads choose what it holds. */
const CACHE_BYTES = 1 << 20;

const key = (i: number) => `k${String(i).padStart(7, '0')}`;

/** Slots whose Fibonacci hash is below 2^32/32: under it, homes in the table's first 1/32 whatever its size. */
function chosenSlots(): number[] {
  const out: number[] = [];
  for (let s = 0; s < KEYS; s++) if (Math.imul(s + 1, 0x9e3779b1) >>> 0 < 2 ** 27) out.push(s);
  return out;
}

/** Writes KEYS keys into a new store, then reads key(i) for each i of `reads`: the cache's probes per hit. */
async function fillBy(reads: number[]): Promise<{ probes: number; held: number }> {
  const store: Store = await openStore(tempDir(), {
    fsync: 'never',
    logger: silentLogger,
    compaction: { auto: false },
    slotCacheBytes: CACHE_BYTES,
  });
  try {
    for (let i = 0; i < KEYS; i++) store.setNow(key(i), 'v');
    const cache = (store as unknown as { slotCache: SlotCache }).slotCache;
    expect(cache.sheds).toBe(1);
    expect(cache.size).toBe(0);
    for (const i of reads) expect(store.getSync(key(i))?.toString()).toBe('v');
    return { probes: cache.averageProbes(), held: cache.size };
  } finally {
    await store.close();
  }
}

describe('small-value cache hash flooding', () => {
  it('spreads the slots a client chose as it spreads random ones', async () => {
    const chosen = chosenSlots();
    expect(chosen.length).toBeGreaterThan(1900);
    const random = chosen.map((_, i) => (i * 40_503 + 17) % KEYS); // distinct (40,503 is odd), no pattern the hash sees
    const r = await fillBy(random);
    const f = await fillBy(chosen);
    const shown = `chosen ${f.held} slots: ${f.probes.toFixed(2)} probes per hit; random ${r.held}: ${r.probes.toFixed(2)}`;
    expect(f.held, shown).toBe(chosen.length);
    // Random slots at load <= 1/2: ~1.5 probes per hit. Chosen under the Fibonacci hash: ~960.
    expect(r.probes, shown).toBeLessThan(2.5);
    expect(f.probes, shown).toBeLessThan(2.5);
  });
});
