/**
 * Hint files (DESIGN.md §2): an accelerator, never the truth. A bad hint
 * (flipped byte, truncated, another segment's) is ignored and its segment
 * rescanned with the same result, then rewritten; `*.tmp` leftovers and
 * orphan hints are swept at open; a restart with good hints reads no record
 * of a sealed segment; a segment sealed just before close still gets its
 * hint; a read-only open writes nothing.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock, openStore, type StoreOptions } from '../../src/engine/index.js';
import { SEGMENT_HEADER_BYTES } from '../../src/engine/segment-header.js';
import {
  captureLogger,
  copyDir,
  flipBit,
  recordingFs,
  removeTempDirs,
  segFiles,
  silentLogger,
  tempDir,
} from './helpers.js';

const clock = new ManualClock();
const opts: StoreOptions = {
  maxSegmentBytes: 1024,
  fsync: 'never',
  cacheBytes: 0,
  clock,
  logger: silentLogger,
  compaction: { auto: false },
};
const KEYS = Array.from({ length: 12 }, (_, i) => `key-${i}`);

let base: string;
let expected: Record<string, string | null>;
let sealed: string[];

beforeAll(async () => {
  base = tempDir();
  const s = await openStore(base, opts);
  for (let i = 0; i < 80; i++) {
    const k = KEYS[(i * 7) % KEYS.length]!;
    if (i % 9 === 4) await s.delete(k);
    else await s.set(k, `${k}=${i} ${'.'.repeat(i % 50)}`, i % 11 === 0 ? { ttlMs: 60_000 } : {});
  }
  // key-0 is written early (sealed segments) and deleted last: its tombstone must win over hints.
  await s.set('key-0', 'old');
  for (let i = 0; i < 20; i++) await s.set('filler', 'x'.repeat(100));
  await s.delete('key-0');
  expected = snapshotOf(s);
  await s.close();
  const segs = segFiles(base);
  sealed = segs.slice(0, -1);
  expect(sealed.length).toBeGreaterThanOrEqual(4);
  for (const seg of sealed) expect(fs.existsSync(join(base, seg.replace('.seg', '.hint')))).toBe(true);
  expect(expected['key-0']).toBeNull();
});

afterAll(removeTempDirs);

function snapshotOf(s: { getSync(k: string): Buffer | undefined }): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const k of [...KEYS, 'filler']) out[k] = s.getSync(k)?.toString() ?? null;
  return out;
}

const hintOf = (dir: string, seg: string) => join(dir, seg.replace('.seg', '.hint'));

describe('bad hints are ignored and the segment rescanned', () => {
  const damages: { name: string; damage: (path: string) => void }[] = [
    { name: 'a flipped bit in its header', damage: (p) => flipBit(p, 10, 1) },
    { name: 'a flipped bit in its body', damage: (p) => flipBit(p, fs.statSync(p).size >> 1, 4) },
    { name: 'a flipped bit in its last byte', damage: (p) => flipBit(p, fs.statSync(p).size - 1, 7) },
    { name: 'truncation to half', damage: (p) => fs.truncateSync(p, fs.statSync(p).size >> 1) },
    { name: 'truncation inside the header', damage: (p) => fs.truncateSync(p, 10) },
    { name: 'an empty file', damage: (p) => fs.truncateSync(p, 0) },
    { name: 'trailing junk', damage: (p) => fs.appendFileSync(p, 'junk') },
  ];

  for (const d of damages) {
    it(`ignores a hint with ${d.name}, rescans with the same result, and rewrites it`, async () => {
      const dir = copyDir(base);
      const victim = sealed[1]!;
      d.damage(hintOf(dir, victim));
      const { logger, lines } = captureLogger();
      const s = await openStore(dir, { ...opts, logger });
      expect(snapshotOf(s)).toEqual(expected);
      const r = s.stats().recovery;
      expect(r.fromHints).toBe(sealed.length - 1);
      expect(r.scanned).toBe(2); // the victim and the active segment
      expect(r.corruptions).toBe(0);
      expect(lines.some((l) => l.level === 40 && l.file === victim.replace('.seg', '.hint'))).toBe(true);
      await s.close();
      // The rescan wrote a good hint back.
      const again = await openStore(dir, opts);
      expect(again.stats().recovery.fromHints).toBe(sealed.length);
      expect(snapshotOf(again)).toEqual(expected);
      await again.close();
    });
  }

  it("ignores another segment's hint put in place of a segment's own", async () => {
    const dir = copyDir(base);
    fs.copyFileSync(hintOf(dir, sealed[0]!), hintOf(dir, sealed[2]!));
    const s = await openStore(dir, opts);
    expect(s.stats().recovery.fromHints).toBe(sealed.length - 1);
    expect(snapshotOf(s)).toEqual(expected);
    await s.close();
  });

  it('rescans a segment whose hint is missing, with the same result', async () => {
    const dir = copyDir(base);
    for (const seg of sealed) fs.rmSync(hintOf(dir, seg));
    const s = await openStore(dir, opts);
    expect(s.stats().recovery).toMatchObject({ fromHints: 0, scanned: sealed.length + 1 });
    expect(snapshotOf(s)).toEqual(expected);
    await s.close();
  });
});

describe('restart with hints', () => {
  it('does not read the records of sealed segments (only their headers)', async () => {
    const dir = copyDir(base);
    const rec = recordingFs();
    const s = await openStore(dir, { ...opts, fs: rec.fs });
    const r = s.stats().recovery;
    expect(r).toMatchObject({ fromHints: sealed.length, scanned: 1, segments: sealed.length + 1 });
    const sealedReads = rec.calls.filter(
      (c) => c.op === 'read' && sealed.some((n) => c.path === join(dir, n)),
    );
    expect(sealedReads.length).toBe(sealed.length); // one header read each
    for (const c of sealedReads) {
      expect(c.position).toBe(0);
      expect(c.length).toBeLessThanOrEqual(SEGMENT_HEADER_BYTES);
    }
    expect(snapshotOf(s)).toEqual(expected);
    await s.close();
  });

  it('writes the hint of a segment sealed just before close', async () => {
    const dir = tempDir();
    const s = await openStore(dir, opts);
    await s.set('a', 'x'.repeat(600));
    await s.set('b', 'y'.repeat(600)); // rotates: the first segment is sealed in the background
    await s.close();
    expect(segFiles(dir)).toHaveLength(2);
    expect(fs.existsSync(hintOf(dir, segFiles(dir)[0]!))).toBe(true);
    const again = await openStore(dir, opts);
    expect(again.stats().recovery).toMatchObject({ fromHints: 1, scanned: 1 });
    expect(again.getSync('a')?.toString()).toBe('x'.repeat(600));
    await again.close();
  });

  it('writes the missing hint of a segment found at open, even when closed at once', async () => {
    const dir = copyDir(base);
    fs.rmSync(hintOf(dir, sealed[0]!));
    await (await openStore(dir, opts)).close();
    expect(fs.existsSync(hintOf(dir, sealed[0]!))).toBe(true);
  });
});

describe('sweeping at open', () => {
  it('removes stray *.tmp files and hints or indexes without a segment', async () => {
    const dir = copyDir(base);
    const strays = [
      `${sealed[0]!.replace('.seg', '.hint')}.tmp`,
      `${sealed[1]!.replace('.seg', '.index')}.tmp`,
      '99999999999999999999.seg.tmp',
      'whatever.tmp',
    ];
    for (const n of strays) fs.writeFileSync(join(dir, n), 'half written');
    const orphans = ['00000000000000999999.hint', '00000000000000999999.index'];
    for (const n of orphans) fs.copyFileSync(hintOf(dir, sealed[0]!), join(dir, n));
    const { logger, lines } = captureLogger();
    const s = await openStore(dir, { ...opts, logger });
    const left = fs.readdirSync(dir);
    for (const n of [...strays, ...orphans]) expect(left).not.toContain(n);
    expect(left.filter((n) => n.endsWith('.tmp'))).toEqual([]);
    expect(lines.filter((l) => /temporary/.test(l.msg)).length).toBe(strays.length);
    expect(snapshotOf(s)).toEqual(expected);
    await s.close();
  });

  it('a read-only open writes nothing, not even a missing hint', async () => {
    const dir = copyDir(base);
    fs.rmSync(hintOf(dir, sealed[0]!));
    fs.writeFileSync(join(dir, 'left.tmp'), 'x');
    const before = fs.readdirSync(dir).sort();
    const s = await openStore(dir, { ...opts, readOnly: true });
    expect(snapshotOf(s)).toEqual(expected);
    await s.close();
    expect(fs.readdirSync(dir).sort()).toEqual(before);
  });
});
