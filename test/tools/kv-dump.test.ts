/**
 * kv-dump as an operator runs it: the compiled CLI on real directories that
 * span many 1 KiB segments, before and after compaction.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { SparseIndex } from '../../src/engine/sparse-index.js';
import {
  built,
  flipBit,
  holdDir,
  makeData,
  open,
  run,
  runJson,
  segFiles,
  tempDir,
  useBuiltTools,
} from './helpers.js';

useBuiltTools();

interface DumpJson {
  from: number;
  limit: number | null;
  next: number | null;
  damage: { segment: string; position: number; reason: string; tornTail: boolean }[];
  records: {
    offset: number;
    segment: string;
    position: number;
    key: string;
    keyEncoding: string;
    tombstone: boolean;
    value: string | null;
    valueEncoding: string;
    valueBytes: number;
    valueTruncated: boolean;
    expiresAt: number | null;
    batch: 'member' | 'end' | null;
  }[];
}

describe('kv-dump --from on many segments', () => {
  let dir: string;
  beforeAll(async () => {
    ({ dir } = await makeData(500, 40));
  });

  it('returns exactly the records from each offset, across segment boundaries', () => {
    const bases = segFiles(dir).map((f) => Number(f.replace('.seg', '')));
    expect(bases.length).toBeGreaterThan(15);
    const froms = [0, 1, 77, bases[5]!, bases[5]! - 1, bases[9]! + 3, 495, 499];
    for (const from of froms) {
      const { code, json } = runJson<DumpJson>(built.dump, [dir, '--from', String(from), '--limit', '7']);
      expect(code).toBe(0);
      const offsets = json.records.map((r) => r.offset);
      expect(offsets).toEqual([0, 1, 2, 3, 4, 5, 6].map((i) => from + i).filter((o) => o <= 502));
      for (const r of json.records) {
        if (r.offset < 500) {
          expect(r).toMatchObject({ key: `k${r.offset % 40}`, value: `value-${r.offset}`, tombstone: false });
          const base = Math.max(...bases.filter((b) => b <= r.offset));
          expect(r.segment).toBe(`${String(base).padStart(20, '0')}.seg`);
        }
      }
      expect(json.next).toBe(offsets.length === 7 ? from + 7 : null);
    }
  });

  it('shows the end of the log: the tombstone and the batch', () => {
    const { json } = runJson<DumpJson>(built.dump, [dir, '--from', '500']);
    expect(json.records.map((r) => [r.offset, r.key, r.tombstone, r.value, r.batch])).toEqual([
      [500, 'k1', true, null, null],
      [501, 'a', false, '1', 'member'],
      [502, 'b', false, '2', 'end'],
    ]);
    expect(json.next).toBeNull();
    expect(runJson<DumpJson>(built.dump, [dir, '--from', '9999']).json.records).toEqual([]);
  });

  it('dumps the whole log without --from, and prints one text line per record', () => {
    const all = runJson<DumpJson>(built.dump, [dir]).json;
    expect(all.records.map((r) => r.offset)).toEqual(Array.from({ length: 503 }, (_, i) => i));
    const text = run(built.dump, [dir, '--from', '42', '--limit', '3']);
    expect(text.code).toBe(0);
    const lines = text.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^42 {2}\d{20}\.seg:\d+ {2}SET {2}"k2" {2}"value-42"$/);
    expect(text.stderr).toContain('3 records (offsets 42..44); continue with --from 45');
  });

  it('does not scan from the start: damage in the first segment does not touch a later --from', () => {
    const copy = tempDir();
    fs.cpSync(dir, copy, { recursive: true });
    const first = join(copy, segFiles(copy)[0]!);
    flipBit(first, 100);
    const later = runJson<DumpJson>(built.dump, [copy, '--from', '300', '--limit', '5']);
    expect(later.code).toBe(0);
    expect(later.json.damage).toEqual([]);
    expect(later.json.records.map((r) => r.offset)).toEqual([300, 301, 302, 303, 304]);
    // From the start, the damage is reported (stderr in text mode) and the rest still printed.
    const whole = run(built.dump, [copy, '--limit', '30']);
    expect(whole.code).toBe(1);
    expect(whole.stderr).toMatch(/damage in 0{20}\.seg at byte \d+: record fails its CRC/);
    expect(whole.stdout.trimEnd().split('\n')).toHaveLength(30);
  });

  it('falls back to a scan when a sparse index points at no record, or at a later one', () => {
    const copy = tempDir();
    fs.cpSync(dir, copy, { recursive: true });
    const seg = segFiles(copy)[3]!;
    const base = Number(seg.replace('.seg', ''));
    const indexPath = join(copy, seg.replace('.seg', '.index'));
    const from = String(base + 3);
    const lie = (position: number) => {
      const index = new SparseIndex(base, 64);
      index.observe(base + 2, position);
      fs.writeFileSync(indexPath, index.encode());
    };
    lie(100); // not a record start
    let got = runJson<DumpJson>(built.dump, [copy, '--from', from, '--limit', '2']);
    expect(got.code).toBe(0);
    expect(got.json.records.map((r) => r.offset)).toEqual([base + 3, base + 4]);
    // The start of the record at base + 6: the entry claims offset base + 2 there.
    const at = runJson<DumpJson>(built.dump, [dir, '--from', String(base + 6), '--limit', '1']).json
      .records[0]!;
    lie(at.position);
    got = runJson<DumpJson>(built.dump, [copy, '--from', from, '--limit', '2']);
    expect(got.json.records.map((r) => r.offset)).toEqual([base + 3, base + 4]);
  });
});

describe('kv-dump values', () => {
  it('shows binary as hex or base64, cuts long values unless --full, and shows expiry', async () => {
    const dir = tempDir();
    const store = await open(dir);
    await store.set('bin', Buffer.from([0, 1, 2, 0xff]));
    await store.set('long', 'x'.repeat(1000));
    await store.set('ttl', 'soon', { ttlMs: 3_600_000 });
    await store.close();

    const json = runJson<DumpJson>(built.dump, [dir]).json;
    expect(json.records[0]).toMatchObject({ value: 'AAEC/w==', valueEncoding: 'base64', valueBytes: 4 });
    expect(json.records[1]).toMatchObject({ valueTruncated: true, valueBytes: 1000 });
    expect(json.records[1]!.value).toHaveLength(200);
    expect(json.records[2]!.expiresAt).toBeGreaterThan(Date.now());
    const full = runJson<DumpJson>(built.dump, [dir, '--full', '--binary', 'hex']).json;
    expect(full.records[0]).toMatchObject({ value: '000102ff', valueEncoding: 'hex' });
    expect(full.records[1]!.value).toHaveLength(1000);

    const text = run(built.dump, [dir]).stdout.split('\n');
    expect(text[0]).toContain('"bin"  hex:000102ff');
    expect(text[1]).toContain('... (1000 bytes)');
    expect(text[2]).toMatch(/"ttl" {2}"soon" {2}expires=\d{4}-\d\d-\d\dT/);
    expect(run(built.dump, [dir, '--binary', 'octal']).code).toBe(2);
    expect(run(built.dump, [dir, '--limit', '-3']).code).toBe(2);
  });
});

describe('kv-dump after compaction', () => {
  it('follows the gaps: an offset in a gap starts at the next kept record', async () => {
    const dir = tempDir();
    const store = await open(dir);
    await Promise.all(Array.from({ length: 400 }, (_, i) => store.set(`k${i % 20}`, `v${i}`)));
    await store.compact();
    const expected: number[] = [];
    for await (const r of store.readFrom(0)) expected.push(r.offset);
    await store.close();
    expect(expected.length).toBeLessThan(400);
    const all = runJson<DumpJson>(built.dump, [dir]).json.records.map((r) => r.offset);
    expect(all).toEqual(expected);
    // Every starting point, kept or in a gap, gives the suffix of kept offsets from there.
    for (const from of [0, 5, 150, 379, 380, 390, 399]) {
      const got = runJson<DumpJson>(built.dump, [dir, '--from', String(from), '--limit', '4']).json.records;
      expect(got.map((r) => r.offset)).toEqual(expected.filter((o) => o >= from).slice(0, 4));
    }
  });
});

describe('kv-dump and the directory lock', () => {
  it('refuses a directory in use, and reads it with --force-read-only', async () => {
    const { dir } = await makeData(60);
    const holder = await holdDir(dir);
    try {
      const refused = run(built.dump, [dir]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(`in use by process ${holder.pid}`);
      const forced = runJson<DumpJson>(built.dump, [
        dir,
        '--force-read-only',
        '--from',
        '10',
        '--limit',
        '2',
      ]);
      expect(forced.code).toBe(0);
      expect(forced.json.records.map((r) => r.offset)).toEqual([10, 11]);
    } finally {
      await holder.stop();
    }
  });
});
