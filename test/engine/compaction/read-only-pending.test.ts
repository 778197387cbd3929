/**
 * A read-only open (kv-check, kv-dump) of a directory where a compaction
 * committed but did not finish its swap: it must not finish the swap (it
 * writes nothing), yet it must see the data once, as the swap will leave it:
 * the outputs (under their `.compacting` names where not renamed yet), not
 * the inputs they replace. Snapshots of a real directory are taken at the
 * swap's steps (a copy at that instant is what a crash would leave), and at
 * points between its renames.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { SwapStep } from '../../../src/engine/compaction/swap.js';
import { compactingFile, segmentFile } from '../../../src/engine/filenames.js';
import { ManualClock, openStore, type StoreOptions } from '../../../src/engine/index.js';
import { silentLogger } from '../helpers.js';
import { expectModel, expectRecount, fastTempDir, Model, removeFastTempDirs } from './util.js';

afterAll(removeFastTempDirs);

const KEYS = Array.from({ length: 60 }, (_, i) => `key-${String(i).padStart(3, '0')}`);
const opts: StoreOptions = {
  maxSegmentBytes: 2048,
  fsync: 'never',
  logger: silentLogger,
  compaction: { auto: false },
};

/** Writes overwrites and deletes over many small segments, compacts, and copies the directory at each swap step. */
async function snapshots(): Promise<{ model: Model; at: Map<SwapStep, string> }> {
  const dir = fastTempDir();
  const at = new Map<SwapStep, string>();
  const onStep = (step: SwapStep) => {
    const copy = fastTempDir();
    fs.cpSync(dir, copy, { recursive: true });
    fs.rmSync(join(copy, 'LOCK'), { force: true });
    at.set(step, copy);
  };
  const model = new Model(new ManualClock(0));
  const store = await openStore(dir, { ...opts, compaction: { auto: false, onStep } });
  for (let round = 0; round < 6; round++) {
    for (const [i, k] of KEYS.entries()) {
      if ((i + round) % 7 === 0) {
        await store.delete(k);
        model.delete(k);
      } else {
        const v = `r${round}-${k}-${'x'.repeat(i % 13)}`;
        await store.set(k, v);
        model.set(k, v);
      }
    }
  }
  await store.compact();
  await store.close();
  return { model, at };
}

async function expectReadOnlyView(dir: string, model: Model, ctx: string): Promise<void> {
  const before = fs.readdirSync(dir).sort();
  const ro = await openStore(dir, { ...opts, readOnly: true });
  try {
    expect(ro.stats().recovery.corruptions, ctx).toBe(0);
    expectModel(ro, model, KEYS, `${ctx}, read-only`);
    await expectRecount(ro, Date.now(), `${ctx}, read-only`);
    // One set: no two segments hold the same offsets (inputs and outputs both open would).
    const segs = ro.stats().segments;
    for (let i = 1; i < segs.length; i++) {
      expect(segs[i]!.baseOffset, `${ctx}: segment offset ranges are disjoint`).toBeGreaterThan(
        Math.max(segs[i - 1]!.baseOffset, segs[i - 1]!.lastOffset),
      );
    }
  } finally {
    await ro.close();
  }
  expect(fs.readdirSync(dir).sort(), `${ctx}: a read-only open changes nothing`).toEqual(before);
  // A read-write open then finishes the swap and sees the same.
  const rw = await openStore(dir, opts);
  try {
    expectModel(rw, model, KEYS, `${ctx}, read-write`);
    expect(fs.existsSync(join(dir, 'COMPACTION')), ctx).toBe(false);
  } finally {
    await rw.close();
  }
}

describe('read-only open with a committed, unfinished compaction swap', () => {
  it('sees the data once, as the swap will leave it, at each step and between its renames', async () => {
    const { model, at } = await snapshots();
    const committed = at.get('committed')!;
    const files = fs.readdirSync(committed);
    expect(files, 'the manifest is there').toContain('COMPACTION');
    const pending = files.filter((n) => n.endsWith('.compacting'));
    expect(pending.length, 'outputs still under .compacting names').toBeGreaterThan(0);
    // Without the view both sets would count: the inputs are still there.
    expect(files.filter((n) => n.endsWith('.seg')).length).toBeGreaterThan(1);

    await expectReadOnlyView(committed, model, 'killed at committed');
    expect(fs.existsSync(join(at.get('files-swapped')!, 'COMPACTION'))).toBe(true);
    await expectReadOnlyView(at.get('files-swapped')!, model, 'killed at files-swapped');

    // Between renames: some outputs renamed, the rest not; the inputs not yet deleted.
    const { at: again } = await snapshots();
    const partial = again.get('committed')!;
    const segs = fs
      .readdirSync(partial)
      .filter((n) => n.endsWith('.seg.compacting'))
      .sort();
    expect(segs.length).toBeGreaterThan(0);
    const first = segs[0]!.replace(/\.compacting$/, '');
    expect(compactingFile(first)).toBe(segs[0]);
    expect(first.endsWith(segmentFile(0).slice(-4))).toBe(true);
    for (const n of fs.readdirSync(partial)) {
      if (n.startsWith(first.replace(/\.seg$/, '')) && n.endsWith('.compacting')) {
        fs.renameSync(join(partial, n), join(partial, n.replace(/\.compacting$/, '')));
      }
    }
    await expectReadOnlyView(partial, model, 'killed after the first output was renamed');
  });
});
