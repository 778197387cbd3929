/**
 * Under `always` the active segment's file is kept ALWAYS_ZERO_AHEAD_BYTES of
 * written zeros ahead of its data (Segment.zeroAhead), so the fdatasync that
 * acknowledges a write changes no file length (no inode write). The zeros are
 * cut when a segment is sealed (before the next one is created) and at a
 * clean close; after a crash, recovery cuts them as a torn tail and every
 * acknowledged write is there.
 */
import { copyFileSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { nodeFs } from '../../src/engine/fs.js';
import { openStore, type StoreOptions } from '../../src/engine/index.js';
import { ALWAYS_ZERO_AHEAD_BYTES } from '../../src/engine/limits.js';
import { checkDir } from '../../tools/lib/check.js';
import { removeTempDirs, silentLogger, tempDir } from './helpers.js';

const base: StoreOptions = { logger: silentLogger, compaction: { auto: false }, fsync: 'always' };
afterAll(removeTempDirs);

const segFiles = (dir: string) =>
  readdirSync(dir)
    .filter((f) => f.endsWith('.seg'))
    .sort();
const fileSize = (dir: string, f: string) => statSync(join(dir, f)).size;

/** The files of `dir` as a crash would leave them (what reached the OS), in a fresh directory. */
function crashImage(dir: string): string {
  const copy = tempDir();
  mkdirSync(copy, { recursive: true });
  for (const f of readdirSync(dir)) if (f !== 'LOCK') copyFileSync(join(dir, f), join(copy, f));
  return copy;
}

describe("fsync: 'always', zeros written ahead of the active segment's data", () => {
  it('acknowledged writes land over zeros: the file length does not change from write to write', async () => {
    const dir = tempDir();
    const s = await openStore(dir, base);
    await s.set('k0', 'v');
    const [file] = segFiles(dir);
    const len = fileSize(dir, file!);
    const data = s.stats().segments.at(-1)!.bytes;
    expect(len).toBeGreaterThanOrEqual(data + ALWAYS_ZERO_AHEAD_BYTES / 2);
    for (let i = 1; i <= 50; i++) await s.set(`k${i}`, 'x'.repeat(100));
    expect(fileSize(dir, file!)).toBe(len);
    await s.close();
    // A clean close leaves the file ending at its data.
    expect(fileSize(dir, file!)).toBeLessThan(len);
    const r = await openStore(dir, base);
    expect(r.stats().recovery.truncatedBytes).toBe(0);
    expect(r.getSync('k50')?.toString()).toBe('x'.repeat(100));
    await r.close();
  });

  it('after a crash, recovery cuts the zeros as a torn tail and keeps every acknowledged write', async () => {
    const dir = tempDir();
    const s = await openStore(dir, base);
    for (let i = 0; i < 200; i++) await s.set(`k${i}`, `v${i}`);
    const data = s.stats().segments.at(-1)!.bytes;
    const image = crashImage(dir);
    const [file] = segFiles(image);
    expect(fileSize(image, file!)).toBeGreaterThan(data);
    // kv-check reports the zeros as the torn tail that recovery cuts (--fix would cut the same bytes).
    const report = checkDir(nodeFs, image);
    expect(report.tornTail?.position).toBe(data);
    expect(report.tornTail?.bytes).toBe(fileSize(image, file!) - data);
    const r = await openStore(image, base);
    expect(r.stats().recovery.truncatedBytes).toBe(fileSize(dir, file!) - data);
    for (let i = 0; i < 200; i++) expect(r.getSync(`k${i}`)?.toString()).toBe(`v${i}`);
    // The recovered segment stays active and keeps zeros ahead again.
    await r.set('after', 'crash');
    expect(fileSize(image, file!)).toBeGreaterThanOrEqual(
      r.stats().segments.at(-1)!.bytes + ALWAYS_ZERO_AHEAD_BYTES / 2,
    );
    await r.close();
    await s.close();
  });

  it('a sealed segment ends at its data; only the last one holds zeros, and a crash image reopens without damage', async () => {
    const dir = tempDir();
    const s = await openStore(dir, { ...base, maxSegmentBytes: 64 * 1024 });
    for (let i = 0; i < 1500; i++) await s.set(`k${i % 300}`, `value-${i}-`.padEnd(100, 'x'));
    const segs = s.stats().segments;
    expect(segs.length).toBeGreaterThan(2);
    for (const seg of segs.slice(0, -1)) expect(fileSize(dir, seg.file)).toBe(seg.bytes);
    const last = segs.at(-1)!;
    expect(fileSize(dir, last.file)).toBeGreaterThan(last.bytes);
    const image = crashImage(dir);
    const r = await openStore(image, { ...base, maxSegmentBytes: 64 * 1024 });
    expect(r.stats().recovery.corruptions).toBe(0);
    expect(r.stats().recovery.truncatedBytes).toBe(fileSize(dir, last.file) - last.bytes);
    for (let i = 1200; i < 1500; i++)
      expect(r.getSync(`k${i % 300}`)?.toString()).toBe(`value-${i}-`.padEnd(100, 'x'));
    await r.close();
    await s.close();
  });

  it('interval keeps the file at its data', async () => {
    const dir = tempDir();
    const s = await openStore(dir, { ...base, fsync: 'interval' });
    for (let i = 0; i < 20; i++) await s.set(`k${i}`, 'v');
    await s.sync();
    const seg = s.stats().segments.at(-1)!;
    expect(fileSize(dir, seg.file)).toBe(seg.bytes);
    await s.close();
  });
});
