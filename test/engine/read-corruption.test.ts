/**
 * Corruption met at run time (issue 11 item 3), on real files: a flipped bit
 * in a value of a sealed, hinted segment is not seen at open (the hint is
 * trusted); a GET answers CORRUPTION, a compaction over it fails and changes
 * nothing, a read by offset stops at it, and the record is logged once (at
 * error, file and position, never key or value) and counted in
 * stats().corruption however often it is met.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/engine/index.js';
import { captureLogger, flipBit, removeTempDirs, segFiles, silentLogger, tempDir } from './helpers.js';

afterAll(removeTempDirs);

const opts = { maxSegmentBytes: 2048, cacheBytes: 0, compaction: { auto: false } } as const;
const value = (r: number, i: number) => `r${r}-k${i}-${'v'.repeat(24)}`;

describe('corruption found by reads', () => {
  it('is answered CORRUPTION, logged once per record and counted, by GET, compaction and readFrom alike', async () => {
    const dir = tempDir();
    const setup = await openStore(dir, { ...opts, logger: silentLogger });
    for (let r = 0; r < 3; r++) for (let i = 0; i < 30; i++) await setup.set(`k${i}`, value(r, i));
    for (let i = 0; i < 60; i++) await setup.set(`z${i}`, 'w'.repeat(40)); // k7's last record is sealed
    await setup.close();
    let file = '';
    let position = -1;
    for (const name of segFiles(dir)) {
      const at = fs.readFileSync(join(dir, name)).indexOf(value(2, 7));
      if (at >= 0) {
        file = name;
        position = at;
      }
    }
    flipBit(join(dir, file), position + 10, 3);

    const { logger, lines } = captureLogger();
    const store = await openStore(dir, { ...opts, logger });
    expect(store.stats().recovery.corruptions).toBe(0); // started from hints
    for (let n = 0; n < 3; n++) await expect(store.get('k7')).rejects.toMatchObject({ code: 'CORRUPTION' });
    expect(store.getSync('k8')?.toString()).toBe(value(2, 8));
    await expect(store.compact()).rejects.toMatchObject({ code: 'CORRUPTION' });
    expect(store.getSync('k9')?.toString()).toBe(value(2, 9));
    await expect(async () => {
      for await (const _ of store.readFrom(0)) {
        // reads every record up to the damaged one
      }
    }).rejects.toMatchObject({ code: 'CORRUPTION' });
    expect(store.stats().corruption).toEqual({ records: 1, reads: 4 });
    const logged = lines.filter((l) => l.msg.startsWith('corruption found by a read'));
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ level: 50, file });
    expect(JSON.stringify(logged[0])).not.toMatch(/vvvv|"k7"/);
    await store.close();
  });
});
