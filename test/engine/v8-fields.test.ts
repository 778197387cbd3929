/**
 * V8's view of the write path's fields (src/engine/v8-fields.ts, issue 15):
 * a store's first sync round and first rotation no longer change a field's
 * representation or constness, each of which deoptimised the optimised
 * write path (set, checkWritable, makeRoom, appendAscii, appended, addFrom,
 * ...) and had V8 compile it again in the middle of a load. Checked with
 * V8's own natives (%HaveSameMap, %HasOwnConstDataProperty) in a child node.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { removeTempDirs, tempDir } from './helpers.js';

const DIST = fileURLToPath(new URL('../../dist/src/engine/', import.meta.url));

afterAll(() => removeTempDirs());

interface Shapes {
  /** Fields V8 holds as constants right after open, by object. */
  constAtOpen: Record<string, string[]>;
  /** Whether a store that ran sync rounds and rotations has the map of one that did not. */
  storeMapKept: boolean;
}

function shapes(dirA: string, dirB: string): Shapes {
  const script = `
    import { openStore } from ${JSON.stringify(join(DIST, 'store.js'))};
    const opts = { fsync: 'interval', maxSegmentBytes: 64 * 1024, compaction: { auto: false } };
    const a = await openStore(${JSON.stringify(dirA)}, opts);
    const b = await openStore(${JSON.stringify(dirB)}, opts);
    const fields = {
      store: [a, ['fsyncMs', 'lastRoundMs', 'fsyncCount', 'readsAtRound']],
      keydir: [a.keydir, ['tablePrefaultAt']],
      segment: [a.active, ['sealed', 'hinted', 'readers']],
      hint: [a.active.hint, ['droppedBytes', 'chunks', 'free', 'squeezing', 'packedTo', 'visitFrom', 'tookArrays']],
    };
    const constAtOpen = {};
    for (const [name, [o, keys]] of Object.entries(fields))
      constAtOpen[name] = keys.filter((k) => %HasOwnConstDataProperty(o, k));
    const value = Buffer.alloc(200, 0x61);
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 1000; i++) await a.set('key-' + round + '-' + i, value);
      await a.sync();
    }
    await a.settleBackground();
    const storeMapKept = %HaveSameMap(a, b);
    await a.close();
    await b.close();
    console.log(JSON.stringify({ constAtOpen, storeMapKept }));
  `;
  const out = execFileSync(
    process.execPath,
    ['--allow-natives-syntax', '--input-type=module', '-e', script],
    {
      encoding: 'utf8',
    },
  );
  return JSON.parse(out) as Shapes;
}

describe("the write path's fields and V8's shapes", () => {
  it('a sync round and a rotation leave the Store its map, and no field they write is a constant at open', () => {
    expect(fs.existsSync(join(DIST, 'v8-fields.js')), 'needs npm run build').toBe(true);
    const s = shapes(tempDir(), tempDir());
    expect(s.constAtOpen).toEqual({ store: [], keydir: [], segment: [], hint: [] });
    expect(s.storeMapKept).toBe(true);
  });
});
