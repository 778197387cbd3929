/**
 * The swap's directory operations (compaction/dir-ops.ts): on the real file
 * system they run in the thread pool and must do exactly what nodeFs's
 * synchronous calls do, failures included (a failed rename or unlink must
 * reject, so the swap fails instead of carrying on); on any other Fs they
 * are that Fs's own calls, in the order made. And a store on the real file
 * system compacts through them to the same state: outputs under their final
 * names, no manifest, no `.compacting` file, every key readable.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dirOps } from '../../../src/engine/compaction/dir-ops.js';
import { type Fs, nodeFs } from '../../../src/engine/fs.js';
import { openStore } from '../../../src/engine/index.js';
import { silentLogger } from '../helpers.js';
import { fastTempDir, removeFastTempDirs } from './util.js';

afterAll(removeFastTempDirs);

describe('dirOps on the real file system (thread pool)', () => {
  const ops = dirOps(nodeFs);

  it('renames, unlinks, tells existence and fsyncs a directory as the synchronous calls do', async () => {
    const dir = fastTempDir();
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    fs.writeFileSync(a, 'x');
    expect(await ops.exists(a)).toBe(true);
    expect(await ops.exists(b)).toBe(false);
    await ops.rename(a, b);
    expect(fs.existsSync(a)).toBe(false);
    expect(fs.readFileSync(b, 'utf8')).toBe('x');
    // A rename replaces an existing file, as the swap's rename of an output over an input does.
    fs.writeFileSync(a, 'y');
    await ops.rename(a, b);
    expect(fs.readFileSync(b, 'utf8')).toBe('y');
    await ops.fsyncDir(dir);
    await ops.unlink(b);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('rejects with the OS error when a call fails', async () => {
    const dir = fastTempDir();
    await expect(ops.rename(join(dir, 'none'), join(dir, 'b'))).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(ops.unlink(join(dir, 'none'))).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(ops.fsyncDir(join(dir, 'none'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('dirOps on any other Fs', () => {
  it("is that Fs's own calls, in the order made", async () => {
    const calls: string[] = [];
    const other: Fs = {
      ...nodeFs,
      exists: (p) => {
        calls.push(`exists ${p}`);
        return true;
      },
      rename: (f, t) => void calls.push(`rename ${f} ${t}`),
      unlink: (p) => void calls.push(`unlink ${p}`),
      fsyncDir: (d) => void calls.push(`fsyncDir ${d}`),
    };
    const ops = dirOps(other);
    expect(await ops.exists('p')).toBe(true);
    await ops.rename('f', 't');
    await ops.unlink('u');
    await ops.fsyncDir('d');
    expect(calls).toEqual(['exists p', 'rename f t', 'unlink u', 'fsyncDir d']);
    const failing: Fs = {
      ...nodeFs,
      unlink: () => {
        throw Object.assign(new Error('EIO'), { code: 'EIO' });
      },
    };
    await expect(dirOps(failing).unlink('u')).rejects.toMatchObject({ code: 'EIO' });
  });
});

describe('a compaction on the real file system', () => {
  it('swaps through the thread pool to the same files and data, writes during it winning, and reopens to them', async () => {
    const dir = fastTempDir();
    const options = {
      maxSegmentBytes: 64 * 1024,
      fsync: 'never',
      logger: silentLogger,
      compaction: { auto: false },
    } as const;
    const expected = new Map<string, string>();
    const value = 'v'.repeat(900);
    let store = await openStore(dir, options);
    try {
      for (let round = 0; round < 5; round++) {
        for (let i = 0; i < 200; i++) {
          await store.set(`key-${i}`, `${round}${value}`);
          expected.set(`key-${i}`, `${round}${value}`);
        }
      }
      let compacting = true;
      const s = store;
      const writing = (async () => {
        for (let w = 0; compacting; w++) {
          await s.set(`key-${w % 200}`, `w${w}`);
          expected.set(`key-${w % 200}`, `w${w}`);
          await new Promise((r) => setImmediate(r));
        }
      })();
      const r = await store.compact();
      compacting = false;
      await writing;
      expect(r?.segmentsIn).toBeGreaterThan(2);
      const leftovers = fs
        .readdirSync(dir)
        .filter((n) => n.includes('.compacting') || n.startsWith('COMPACTION'));
      expect(leftovers).toEqual([]);
      for (const [k, v] of expected) expect(store.getSync(k)?.toString()).toBe(v);
      await store.close();
      store = await openStore(dir, options);
      for (const [k, v] of expected) expect(store.getSync(k)?.toString()).toBe(v);
    } finally {
      await store.close();
    }
  });
});
