/**
 * Corruption inside a sealed segment (DESIGN.md §1.3; Bitcask #212): a flipped
 * bit is reported with file and position, counted in
 * stats().recovery.corruptions, and never stops the other keys from loading.
 * When the hint hides the damage from recovery, reading the damaged key throws
 * a CorruptionError: never a wrong value, never "not found" (STYLE.md).
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LogRecord, openStore, type StoreOptions } from '../../src/engine/index.js';
import { RECORD_HEADER_BYTES } from '../../src/engine/record.js';
import { CorruptionError } from '../../src/errors.js';
import {
  captureLogger,
  copyDir,
  flipBit,
  removeTempDirs,
  segFiles,
  silentLogger,
  tempDir,
} from './helpers.js';

const opts: StoreOptions = {
  maxSegmentBytes: 1024,
  fsync: 'never',
  logger: silentLogger,
  compaction: { auto: false },
};
const N = 60;
const keyOf = (i: number) => `u-${String(i).padStart(3, '0')}`;
const valueAt = (i: number) => `value of ${i} ${'#'.repeat(i % 13)}`;

let base: string;
let records: LogRecord[];
let victimSeg: string;
let victim: LogRecord;

beforeAll(async () => {
  base = tempDir();
  const s = await openStore(base, opts);
  for (let i = 0; i < N; i++) await s.set(keyOf(i), valueAt(i));
  records = [];
  for await (const r of s.readFrom(0)) records.push(r);
  await s.close();
  const segs = segFiles(base);
  expect(segs.length).toBeGreaterThanOrEqual(4);
  victimSeg = segs[1]!;
  const inVictim = records.filter((r) => r.segment === victimSeg);
  expect(inVictim.length).toBeGreaterThanOrEqual(5);
  victim = inVictim[inVictim.length >> 1]!;
});

afterAll(removeTempDirs);

const victimKey = () => victim.key.toString();
const hintOf = (dir: string) => join(dir, victimSeg.replace('.seg', '.hint'));

/** Places in the victim record to flip a bit, relative to its start. */
const spots: { name: string; at: () => number; bit: number }[] = [
  { name: 'its CRC', at: () => 1, bit: 2 },
  { name: 'its offset field', at: () => 5, bit: 0 },
  { name: 'its flags (tombstone bit)', at: () => 20, bit: 0 },
  { name: 'its flags (unknown bit)', at: () => 20, bit: 5 },
  { name: 'its key length', at: () => 21, bit: 1 },
  { name: 'its value length', at: () => 23, bit: 3 },
  { name: 'its key', at: () => RECORD_HEADER_BYTES, bit: 6 },
  { name: 'its value', at: () => RECORD_HEADER_BYTES + victim.key.length + victim.value.length - 1, bit: 0 },
];

function expectOthersIntact(s: { getSync(k: string): Buffer | undefined }): void {
  for (let i = 0; i < N; i++) {
    if (keyOf(i) === victimKey()) continue;
    expect(s.getSync(keyOf(i))?.toString(), keyOf(i)).toBe(valueAt(i));
  }
}

describe('a flipped bit in a sealed segment without its hint (scanned at open)', () => {
  for (const spot of spots) {
    it(`is reported with file and position, and the other keys load (bit in ${spot.name})`, async () => {
      const dir = copyDir(base);
      const path = join(dir, victimSeg);
      fs.rmSync(hintOf(dir));
      flipBit(path, victim.position + spot.at(), spot.bit);
      const size = fs.statSync(path).size;
      const { logger, lines } = captureLogger();
      const s = await openStore(dir, { ...opts, logger });
      const r = s.stats().recovery;
      expect(r.corruptions).toBe(1);
      expect(r.truncatedBytes).toBe(0);
      const reports = lines.filter((l) => l.level >= 50 && l.file === victimSeg && /^corruption/.test(l.msg));
      expect(reports).toHaveLength(1);
      expect(reports[0]).toMatchObject({ position: victim.position });
      expect(reports[0]!.msg).toContain(victimSeg);
      expect(reports[0]!.msg).toContain(String(victim.position));
      expectOthersIntact(s);
      expect(s.getSync(victimKey())).toBeUndefined(); // its only record is unreadable
      expect(s.stats().keys).toBe(N - 1);
      // The log is not cut or rewritten: the damage stays for kv-check to show.
      expect(fs.statSync(path).size).toBe(size);
      // A reader of the log through the damage is told, not silently skipped.
      await expect(async () => {
        for await (const _ of s.readFrom(0));
      }).rejects.toMatchObject({ code: 'CORRUPTION', file: victimSeg, position: victim.position });
      // Writes go on and survive a reopen, which reports the damage again.
      await s.set('after', 'ok');
      await s.close();
      const again = await openStore(dir, opts);
      expect(again.getSync('after')?.toString()).toBe('ok');
      expect(again.stats().recovery.corruptions).toBe(1);
      expectOthersIntact(again);
      await again.close();
    });
  }

  it('reports each of two damaged records and keeps everything else', async () => {
    const dir = copyDir(base);
    const inVictim = records.filter((r) => r.segment === victimSeg);
    const a = inVictim[1]!;
    const b = inVictim[inVictim.length - 2]!;
    fs.rmSync(hintOf(dir));
    flipBit(join(dir, victimSeg), a.position + RECORD_HEADER_BYTES, 0);
    flipBit(join(dir, victimSeg), b.position + 2, 0);
    const { logger, lines } = captureLogger();
    const s = await openStore(dir, { ...opts, logger });
    expect(s.stats().recovery.corruptions).toBe(2);
    expect(
      lines
        .filter((l) => l.level >= 50 && l.file === victimSeg && /^corruption/.test(l.msg))
        .map((l) => l.position),
    ).toEqual([a.position, b.position]);
    for (let i = 0; i < N; i++) {
      const k = keyOf(i);
      const damaged = k === a.key.toString() || k === b.key.toString();
      expect(s.getSync(k)?.toString(), k).toBe(damaged ? undefined : valueAt(i));
    }
    await s.close();
  });
});

describe('a sealed segment cut short (its tail never reached the disk)', () => {
  const cut = () => victim.position + 10;
  const lost = () => records.filter((r) => r.segment === victimSeg && r.position >= victim.position);

  it('is reported, not truncated, when scanned; the keys before the cut and in other segments load', async () => {
    const dir = copyDir(base);
    fs.rmSync(hintOf(dir));
    fs.truncateSync(join(dir, victimSeg), cut());
    const { logger, lines } = captureLogger();
    const s = await openStore(dir, { ...opts, logger });
    expect(s.stats().recovery.corruptions).toBe(1);
    expect(s.stats().recovery.truncatedBytes).toBe(0);
    expect(lines.find((l) => l.level >= 50 && /^corruption/.test(l.msg))).toMatchObject({
      file: victimSeg,
      position: victim.position,
    });
    const gone = new Set(lost().map((r) => r.key.toString()));
    expect(gone.size).toBeGreaterThan(1);
    for (let i = 0; i < N; i++) {
      expect(s.getSync(keyOf(i))?.toString(), keyOf(i)).toBe(gone.has(keyOf(i)) ? undefined : valueAt(i));
    }
    expect(fs.statSync(join(dir, victimSeg)).size).toBe(cut());
    await s.close();
  });

  it('makes reads of the keys its hint places past the end throw CorruptionError', async () => {
    const dir = copyDir(base);
    fs.truncateSync(join(dir, victimSeg), cut());
    const s = await openStore(dir, opts);
    for (const r of lost()) {
      expect(() => s.getSync(r.key.toString())).toThrow(CorruptionError);
    }
    const gone = new Set(lost().map((r) => r.key.toString()));
    for (let i = 0; i < N; i++)
      if (!gone.has(keyOf(i))) expect(s.getSync(keyOf(i))?.toString()).toBe(valueAt(i));
    await s.close();
  });
});

describe('a flipped bit in a sealed segment hidden by its hint', () => {
  for (const spot of spots) {
    it(`makes a read of the damaged key throw CorruptionError, never a wrong value (bit in ${spot.name})`, async () => {
      const dir = copyDir(base);
      flipBit(join(dir, victimSeg), victim.position + spot.at(), spot.bit);
      const s = await openStore(dir, opts);
      expect(s.stats().recovery.fromHints).toBe(segFiles(dir).length - 1);
      expectOthersIntact(s);
      for (let attempt = 0; attempt < 2; attempt++) {
        let caught: unknown;
        try {
          const v = s.getSync(victimKey());
          caught = new Error(`returned ${v === undefined ? 'undefined' : JSON.stringify(v.toString())}`);
        } catch (err) {
          caught = err;
        }
        expect(caught).toBeInstanceOf(CorruptionError);
        expect(caught).toMatchObject({ code: 'CORRUPTION', file: victimSeg, position: victim.position });
      }
      await expect(s.get(victimKey())).rejects.toMatchObject({ code: 'CORRUPTION' });
      await s.close();
    });
  }

  it('reports a damaged segment header with file and position 0, and still loads every key', async () => {
    const dir = copyDir(base);
    flipBit(join(dir, victimSeg), 9, 0); // base offset field
    const { logger, lines } = captureLogger();
    const s = await openStore(dir, { ...opts, logger });
    expect(s.stats().recovery.corruptions).toBe(1);
    expect(
      lines.find((l) => l.level >= 50 && l.file === victimSeg && /^corruption/.test(l.msg)),
    ).toMatchObject({ position: 0 });
    for (let i = 0; i < N; i++) expect(s.getSync(keyOf(i))?.toString()).toBe(valueAt(i));
    await s.close();
  });
});
