/**
 * A refused write (disk full) is undone in the keydir: the only way the keydir
 * moves backwards. When that happens during a compaction's swap, the key
 * points back at its old record in an input segment; the swap must notice
 * (verify before the commit, a second move pass after it) and never retire
 * an input that a key still points into. These tests undo writes at both
 * moments and check the values, the reads, and a reopen.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { SwapStep } from '../../../src/engine/compaction/swap.js';
import { MemFs } from '../../../src/engine/mem-fs.js';
import { openStore, type Store } from '../../../src/engine/store.js';

const DIR = '/mem/rollback';

async function fill(store: Store, keys: number): Promise<void> {
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < keys; i++) await store.set(`k${i}`, `v${round}-${i}`);
  }
}

describe('compaction swap with a write undone meanwhile', () => {
  for (const step of ['outputs-written', 'files-swapped'] as SwapStep[]) {
    it(`keys whose write is refused at '${step}' keep their value, readable, after the swap and after reopen`, async () => {
      const fs = new MemFs();
      let inHook = false;
      let refused: Promise<PromiseSettledResult<boolean>[]> | undefined;
      const open = () =>
        openStore(DIR, {
          fs,
          maxSegmentBytes: 2048,
          logger: pino({ level: 'silent' }),
          compaction: {
            auto: false,
            onStep: (s) => {
              if (s !== step || inHook) return;
              inHook = true;
              // Writes issued now sit in the write buffer; the next flush (which the
              // swap itself triggers) fails, and the keydir is rolled back.
              fs.failWrites((p) => (p.endsWith('.seg') ? 'ENOSPC' : undefined));
              refused = Promise.allSettled([0, 1, 2, 3].map((i) => store.set(`k${i}`, 'refused')));
            },
          },
        });
      let store = await open();
      await fill(store, 40);
      const rollbacksBefore = store.rollbacks;
      const result = await store.compact();
      fs.failWrites(undefined);
      const settled = await refused!;
      expect(settled.every((r) => r.status === 'rejected')).toBe(true);
      expect(store.rollbacks).toBeGreaterThan(rollbacksBefore); // the undo really happened during the swap
      expect(result?.segmentsIn).toBeGreaterThan(1);
      for (let i = 0; i < 40; i++) expect((await store.get(`k${i}`))?.toString()).toBe(`v2-${i}`);
      const stats = store.stats();
      expect(stats.compaction.failures).toBe(0);
      await store.close();
      inHook = true; // no more faults
      store = await open();
      for (let i = 0; i < 40; i++) expect((await store.get(`k${i}`))?.toString()).toBe(`v2-${i}`);
      await store.close();
    });
  }
});
