/**
 * kv-check as an operator runs it: the compiled CLI in its own process, on
 * real data directories written by the engine and then damaged by hand.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeHint, encodeHint, type HintEntry } from '../../src/engine/hint.js';
import { encodeRecord, recordSize } from '../../src/engine/record.js';
import { SparseIndex } from '../../src/engine/sparse-index.js';
import type { CheckReport } from '../../tools/lib/check.js';
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

/** The records of one segment file (position, offset, key, size), read back through a read-only store. */
async function recordsOf(dir: string, file: string) {
  const store = await open(dir, { readOnly: true });
  try {
    const out: { position: number; offset: number; key: string; size: number }[] = [];
    for await (const r of store.readFrom(0)) {
      if (r.segment === file) {
        out.push({
          position: r.position,
          offset: r.offset,
          key: r.key.toString(),
          size: recordSize(r.key.length, r.value.length),
        });
      }
    }
    return out;
  } finally {
    await store.close();
  }
}

function readHint(path: string, base: number): HintEntry[] {
  const entries: HintEntry[] = [];
  const problem = decodeHint(
    fs.readFileSync(path),
    base,
    (key, offset, position, valueLength, expiresAt, flags) =>
      entries.push({ key, offset, position, valueLength, expiresAt, flags }),
  );
  expect(problem).toBeUndefined();
  return entries;
}

describe('kv-check on clean data', () => {
  it('exits 0 and counts segments, records, keys, tombstones and bytes like the store does', async () => {
    const { dir, model } = await makeData();
    const { code, json } = runJson<CheckReport>(built.check, [dir]);
    expect(code).toBe(0);
    expect(json.ok).toBe(true);
    const segs = segFiles(dir);
    expect(segs.length).toBeGreaterThan(5);
    expect(json.segments).toBe(segs.length);
    expect(json.records).toBe(300 + 1 + 2);
    expect(json.tombstones).toBe(1);
    expect(json.keys).toBe(model.size);
    expect(json.firstOffset).toBe(0);
    expect(json.lastOffset).toBe(302);
    expect(json.hints).toEqual({ ok: segs.length - 1, missing: 0, bad: 0 });
    expect(json.indexes).toEqual({ ok: segs.length - 1, missing: 0, bad: 0 });
    expect(json.problems).toEqual([]);
    const store = await open(dir, { readOnly: true });
    const stats = store.stats();
    await store.close();
    expect(json.liveBytes).toBe(stats.liveBytes);
    expect(json.deadBytes).toBe(stats.deadBytes);
    expect(json.diskBytes).toBe(stats.diskBytes);

    const text = run(built.check, [dir]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`records       303 (1 tombstones)`);
    expect(text.stdout).toContain(`keys          ${model.size} live`);
    expect(text.stdout).toContain('RESULT: OK');
  });

  it('prints help, and exits 2 on usage errors', () => {
    const help = run(built.check, ['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: kv-check DIR');
    expect(run(built.check, []).code).toBe(2);
    expect(run(built.check, ['--bogus', tempDir()]).code).toBe(2);
    const missing = run(built.check, [join(tempDir(), 'nope')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('does not exist');
  });

  it('reports a missing hint and index as missing, not as damage', async () => {
    const { dir } = await makeData(100);
    const first = segFiles(dir)[0]!.replace('.seg', '');
    fs.rmSync(join(dir, `${first}.hint`));
    fs.rmSync(join(dir, `${first}.index`));
    const { code, json } = runJson<CheckReport>(built.check, [dir]);
    expect(code).toBe(0);
    expect(json.hints.missing).toBe(1);
    expect(json.indexes.missing).toBe(1);
  });
});

describe('kv-check on a torn tail', () => {
  it('reports file and position, --fix --yes cuts it, and the store reopens with the intact prefix', async () => {
    const { dir, model } = await makeData();
    const active = segFiles(dir).at(-1)!;
    const path = join(dir, active);
    const intact = fs.statSync(path).size;
    // Half of a record, as a crash mid-write leaves it.
    const rec = Buffer.alloc(recordSize(3, 100));
    encodeRecord(rec, 0, 303, 0, 0, 'new', Buffer.alloc(100, 7));
    fs.appendFileSync(path, rec.subarray(0, 60));

    const before = runJson<CheckReport>(built.check, [dir]);
    expect(before.code).toBe(1);
    expect(before.json.tornTail).toMatchObject({ file: active, position: intact, bytes: 60 });
    expect(before.json.problems[0]).toMatchObject({ kind: 'torn-tail', file: active, position: intact });
    const text = run(built.check, [dir]);
    expect(text.code).toBe(1);
    expect(text.stdout).toContain(`first problem ${active} at byte ${intact}`);
    expect(text.stdout).toContain('RESULT: NOT OK');

    // Asked on the terminal: "n" leaves the file alone.
    const no = run(built.check, [dir, '--fix'], 'n\n');
    expect(no.code).toBe(1);
    expect(no.stderr).toContain('Continue? [y/N]');
    expect(fs.statSync(path).size).toBe(intact + 60);

    const fix = run(built.check, [dir, '--fix', '--yes']);
    expect(fix.code).toBe(0);
    expect(fix.stdout).toContain(`FIXED: truncated ${active} from byte ${intact}, dropping 60 bytes`);
    expect(fs.statSync(path).size).toBe(intact);
    expect(fs.existsSync(join(dir, 'LOCK'))).toBe(false);

    expect(run(built.check, [dir]).code).toBe(0);
    const store = await open(dir);
    try {
      expect(store.recoveryStats.truncatedBytes).toBe(0);
      for (const [k, v] of model) expect((await store.get(k))?.toString()).toBe(v);
      expect(await store.get('k1')).toBeUndefined();
      expect(store.stats().keys).toBe(model.size);
    } finally {
      await store.close();
    }
  });

  it('answers "y" on the terminal to fix', async () => {
    const { dir } = await makeData(100);
    const path = join(dir, segFiles(dir).at(-1)!);
    const intact = fs.statSync(path).size;
    fs.appendFileSync(path, Buffer.alloc(13, 0));
    const yes = run(built.check, [dir, '--fix'], 'y\n');
    expect(yes.code).toBe(0);
    expect(fs.statSync(path).size).toBe(intact);
  });

  it('treats a batch cut at a record boundary as a torn tail and cuts the whole batch', async () => {
    const { dir, model } = await makeData(100);
    const active = segFiles(dir).at(-1)!;
    const path = join(dir, active);
    const records = await recordsOf(dir, active);
    const batchEnd = records.at(-1)!; // "b", the batch's end record
    const batchStart = records.at(-2)!; // "a"
    fs.truncateSync(path, batchEnd.position);
    const { code, json } = runJson<CheckReport>(built.check, [dir]);
    expect(code).toBe(1);
    expect(json.tornTail).toMatchObject({ file: active, position: batchStart.position });
    expect(json.tornTail?.reason).toContain('batch');
    expect(run(built.check, [dir, '--fix', '--yes']).code).toBe(0);
    expect(fs.statSync(path).size).toBe(batchStart.position);
    const store = await open(dir);
    try {
      expect(await store.get('a')).toBeUndefined();
      expect((await store.get('k2'))?.toString()).toBe(model.get('k2'));
    } finally {
      await store.close();
    }
  });
});

describe('kv-check on a flipped bit in a sealed segment', () => {
  it('reports the file and the record position, and --fix refuses', async () => {
    const { dir } = await makeData();
    const sealed = segFiles(dir)[2]!;
    const path = join(dir, sealed);
    const victim = (await recordsOf(dir, sealed))[3]!;
    flipBit(path, victim.position + victim.size - 2, 3); // inside the value
    const original = fs.readFileSync(path);

    const { code, json } = runJson<CheckReport>(built.check, [dir]);
    expect(code).toBe(1);
    expect(json.problems[0]).toMatchObject({ kind: 'corruption', file: sealed, position: victim.position });
    expect(json.problems[0]!.reason).toContain('CRC');
    expect(json.tornTail).toBeNull();
    // The damage is the segment's; its hint (which points at the record) is not blamed.
    expect(json.hints.bad).toBe(0);
    expect(run(built.check, [dir]).stdout).toContain(
      `${sealed} at byte ${victim.position}: record fails its CRC`,
    );

    const fix = run(built.check, [dir, '--fix', '--yes']);
    expect(fix.code).toBe(1);
    expect(fix.stderr).toContain('refusing to fix');
    expect(fix.stderr).toContain('sealed segment');
    expect(fs.readFileSync(path).equals(original)).toBe(true);
  });

  it('refuses damage in the active segment that valid records follow', async () => {
    const { dir } = await makeData(100);
    const active = segFiles(dir).at(-1)!;
    const victim = (await recordsOf(dir, active))[1]!;
    flipBit(join(dir, active), victim.position + 10);
    const { code, json } = runJson<CheckReport>(built.check, [dir]);
    expect(code).toBe(1);
    expect(json.tornTail).toBeNull();
    expect(json.problems[0]).toMatchObject({ kind: 'corruption', file: active, position: victim.position });
    expect(json.problems[0]!.reason).toContain('not a torn tail');
    const fix = run(built.check, [dir, '--fix', '--yes']);
    expect(fix.code).toBe(1);
    expect(fix.stderr).toContain('Valid records follow it');
  });
});

describe('kv-check on bad hints and indexes', () => {
  it('reports a hint that fails its CRC', async () => {
    const { dir } = await makeData();
    const hint = segFiles(dir)[1]!.replace('.seg', '.hint');
    flipBit(join(dir, hint), 40);
    const { code, json } = runJson<CheckReport>(built.check, [dir]);
    expect(code).toBe(1);
    expect(json.hints.bad).toBe(1);
    expect(json.problems[0]).toMatchObject({ kind: 'hint', file: hint, reason: 'hint body fails its CRC' });
    expect(run(built.check, [dir]).stdout).toContain(`${hint} at byte 0: hint body fails its CRC`);
  });

  it('reports a well-formed hint whose entry disagrees with its record', async () => {
    const { dir } = await makeData();
    const seg = segFiles(dir)[1]!;
    const base = Number(seg.replace('.seg', ''));
    const hint = join(dir, seg.replace('.seg', '.hint'));
    const entries = readHint(hint, base);
    entries[2] = { ...entries[2]!, valueLength: entries[2]!.valueLength + 1 };
    fs.writeFileSync(hint, encodeHint(base, entries));
    const { code, json } = runJson<CheckReport>(built.check, [dir]);
    expect(code).toBe(1);
    expect(json.problems[0]!.kind).toBe('hint');
    expect(json.problems[0]!.reason).toContain(`the entry for key "${entries[2]!.key}" says value length`);
    expect(json.problems[0]!.position).toBeGreaterThan(32);
  });

  it('reports a hint that lacks a key of its segment', async () => {
    const { dir } = await makeData();
    const seg = segFiles(dir)[1]!;
    const base = Number(seg.replace('.seg', ''));
    const hint = join(dir, seg.replace('.seg', '.hint'));
    const entries = readHint(hint, base);
    const dropped = entries.splice(4, 1)[0]!;
    fs.writeFileSync(hint, encodeHint(base, entries));
    const { code, json } = runJson<CheckReport>(built.check, [dir]);
    expect(code).toBe(1);
    expect(json.problems[0]!.reason).toContain(`lacks key "${dropped.key}"`);
  });

  it('reports a sparse index entry that does not point at its record', async () => {
    const { dir } = await makeData();
    const seg = segFiles(dir)[0]!;
    const records = await recordsOf(dir, seg);
    const index = new SparseIndex(0, 64);
    index.observe(records[0]!.offset, records[0]!.position);
    index.observe(records[5]!.offset, records[5]!.position + 1); // one byte off
    fs.writeFileSync(join(dir, seg.replace('.seg', '.index')), index.encode());
    const { code, json } = runJson<CheckReport>(built.check, [dir]);
    expect(code).toBe(1);
    expect(json.indexes.bad).toBe(1);
    expect(json.problems[0]!.reason).toContain('where no valid record starts');
  });
});

describe('kv-check and the directory lock', () => {
  it('refuses a directory held by a running process, and reads it with --force-read-only', async () => {
    const { dir } = await makeData(100);
    const holder = await holdDir(dir);
    try {
      const refused = run(built.check, [dir]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(`in use by process ${holder.pid}`);
      expect(refused.stderr).toContain('--force-read-only');
      expect(run(built.check, [dir, '--fix', '--yes']).code).toBe(1);
      expect(run(built.check, [dir, '--fix', '--force-read-only']).code).toBe(2);

      const forced = run(built.check, [dir, '--force-read-only']);
      expect(forced.code).toBe(0);
      expect(forced.stderr).toContain('reading it anyway');
      expect(forced.stdout).toContain('RESULT: OK');
    } finally {
      await holder.stop();
    }
    // The holder died without releasing: a stale LOCK does not stop kv-check.
    expect(fs.existsSync(join(dir, 'LOCK'))).toBe(true);
    expect(run(built.check, [dir]).code).toBe(0);
  });
});

describe('kv-check after compaction', () => {
  it('accepts the gaps in offsets that compaction leaves', async () => {
    const dir = tempDir();
    const store = await open(dir);
    await Promise.all(Array.from({ length: 400 }, (_, i) => store.set(`k${i % 20}`, `v${i}`)));
    await store.delete('k3');
    const result = await store.compact();
    await store.close();
    expect(result?.segmentsIn ?? 0).toBeGreaterThan(0);
    const { code, json } = runJson<CheckReport>(built.check, [dir]);
    expect(json.problems).toEqual([]);
    expect(code).toBe(0);
    expect(json.keys).toBe(19);
    // Offsets with gaps: fewer records than the span of offsets they cover.
    expect(json.records).toBeLessThan(json.lastOffset - json.firstOffset + 1);
    expect(json.lastOffset).toBeGreaterThanOrEqual(399);
  });
});

describe('kv-check and kv-dump during a half-done compaction swap', () => {
  it('see the directory as the next open will (outputs in, inputs out), and the open agrees', async () => {
    const dir = tempDir();
    const snapshots = new Map<string, string>();
    // Steps 2..5 of the swap run synchronously: a copy taken at a step is the directory a crash there leaves.
    const onStep = (step: string) => {
      if (step !== 'committed' && step !== 'files-swapped') return;
      const copy = tempDir();
      fs.cpSync(dir, copy, { recursive: true });
      fs.rmSync(join(copy, 'LOCK'), { force: true });
      snapshots.set(step, copy);
    };
    const store = await open(dir, { compaction: { auto: false, onStep } });
    await Promise.all(Array.from({ length: 300 }, (_, i) => store.set(`k${i % 15}`, `v${i}`)));
    await store.delete('k4');
    await store.compact();
    const offsets: number[] = [];
    for await (const r of store.readFrom(0)) offsets.push(r.offset);
    const keys = store.stats().keys;
    await store.close();
    expect([...snapshots.keys()].sort()).toEqual(['committed', 'files-swapped']);
    expect(fs.readdirSync(snapshots.get('committed')!).some((n) => n.endsWith('.compacting'))).toBe(true);

    for (const [step, copy] of snapshots) {
      const { code, json } = runJson<CheckReport>(built.check, [copy]);
      expect({ step, problems: json.problems }).toEqual({ step, problems: [] });
      expect(code).toBe(0);
      expect(json.compactionPending).toBe(true);
      expect(json.keys).toBe(keys);
      expect(json.records).toBe(offsets.length);
      const dump = runJson<{ records: { offset: number }[] }>(built.dump, [copy]);
      expect(dump.json.records.map((r) => r.offset)).toEqual(offsets);
      expect(run(built.check, [copy, '--fix', '--yes']).code).toBe(0); // nothing to fix

      const reopened = await open(copy); // finishes the swap
      await reopened.close();
      const after = runJson<CheckReport>(built.check, [copy]);
      expect(after.code).toBe(0);
      expect(after.json.compactionPending).toBe(false);
      expect(after.json.keys).toBe(keys);
    }
  });
});
