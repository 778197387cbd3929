/**
 * A full disk (ENOSPC injected by MemFs) at the two moments a new segment is
 * created:
 * - C: rotating to a new segment: the write that needed the room is refused
 *   with IO_ERROR (not a raw errno the server answers INTERNAL), the failed
 *   creation is undone (no 0-byte `N.seg` per attempt), the store keeps
 *   appending to its active segment once space is back; an empty segment
 *   with no header found at open is not corruption (recovery and kv-check);
 * - B: the lock: LOCK's content (the owner's pid) cannot be written: the
 *   owner is named by an empty `LOCK.<pid>.<start>` instead, which another
 *   process honours, and which a stale lock's takeover removes;
 * - B: opening: recovery needs a fresh active segment (the last one had no
 *   header, or the directory is empty) and cannot create it: the store
 *   opens anyway, serves reads, refuses writes with a clear IO_ERROR, and
 *   accepts them again by itself once space is back.
 */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/engine/clock.js';
import { lockOwnerFile, segmentFile } from '../../src/engine/filenames.js';
import { REPEATED_ERROR_LOG_MS } from '../../src/engine/limits.js';
import { lockOwner } from '../../src/engine/lock.js';
import { MemFs, memPath } from '../../src/engine/mem-fs.js';
import { openStore, type Store } from '../../src/engine/store.js';
import { checkDir } from '../../tools/lib/check.js';
import { captureLogger, silentLogger } from './helpers.js';

const DIR = memPath('db');

function open(
  fs: MemFs,
  extra: { readOnly?: boolean; logger?: typeof silentLogger; clock?: ManualClock } = {},
): Promise<Store> {
  return openStore(DIR, {
    fs,
    fsync: 'always',
    maxSegmentBytes: 1024,
    cacheBytes: 0,
    logger: silentLogger,
    compaction: { auto: false },
    ...extra,
  });
}

const segFiles = (fs: MemFs) => fs.readdir(DIR).filter((n) => n.endsWith('.seg'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
}

describe('ENOSPC creating a segment (C)', () => {
  it('while rotating: IO_ERROR, no empty segment left, the active one keeps going once space is back', async () => {
    const fs = new MemFs();
    const store = await open(fs);
    const value = 'x'.repeat(200);
    for (let i = 0; i < 3; i++) await store.set(`k${i}`, value);
    const active = store.stats().segments.at(-1)!.file;
    // Only a new segment cannot be written: the next write that needs one fails.
    fs.failWrites((p) => (p.endsWith('.seg') && !p.endsWith(active) ? 'ENOSPC' : undefined));
    let refused = 0;
    for (let i = 3; i < 40; i++) {
      const code = await codeOf(store.set(`k${i}`, value));
      if (code !== 'OK') {
        expect(code).toBe('IO_ERROR');
        refused++;
      }
    }
    expect(refused).toBeGreaterThan(30);
    await expect(store.set('again', value)).rejects.toThrow(/creating segment .*ENOSPC/);
    expect(segFiles(fs)).toEqual([active]);
    expect(store.getSync('k1')).toBeDefined();
    fs.failWrites(undefined);
    await store.set('after', value);
    expect(segFiles(fs).length).toBe(2);
    await store.close();
    const again = await open(fs);
    expect(again.stats().recovery.corruptions).toBe(0);
    expect(again.getSync('after')?.toString()).toBe(value);
    expect(again.getSync('k2')?.toString()).toBe(value);
    await again.close();
  });

  it('an empty segment found at open (middle or last) is no corruption: removed, and kv-check agrees', async () => {
    const fs = new MemFs();
    const store = await open(fs);
    for (let i = 0; i < 12; i++) await store.set(`k${i}`, 'y'.repeat(200));
    await store.close();
    const names = segFiles(fs);
    expect(names.length).toBeGreaterThan(2);
    // What the old code left behind: 0-byte segments, one in the middle (between two bases) and one last.
    const lastBase = Number(names.at(-1)!.slice(0, 20));
    for (const name of [segmentFile(lastBase - 1), segmentFile(lastBase + 1000)]) {
      fs.close(fs.open(`${DIR}/${name}`, 'wx'));
    }
    const report = checkDir(fs, DIR);
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.notes.join('\n')).toMatch(/is empty/);

    const ro = await open(fs, { readOnly: true });
    expect(ro.stats().recovery.corruptions).toBe(0);
    expect(ro.getSync('k11')?.toString()).toBe('y'.repeat(200));
    await ro.close();

    const { logger, lines } = captureLogger();
    const rw = await open(fs, { logger });
    expect(rw.stats().recovery.corruptions).toBe(0);
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
    expect(segFiles(fs)).not.toContain(segmentFile(lastBase - 1));
    await rw.set('new', '1');
    expect(rw.getSync('k0')?.toString()).toBe('y'.repeat(200));
    await rw.close();
    expect(checkDir(fs, DIR).notes.join('\n')).not.toMatch(/is empty/);
  });
});

describe('opening on a full disk (B)', () => {
  it('the last segment has no header and no new one fits: reads served, writes IO_ERROR until space is back', async () => {
    const fs = new MemFs();
    const store = await open(fs);
    for (let i = 0; i < 8; i++) await store.set(`k${i}`, 'z'.repeat(200));
    await store.close();
    const lastBase = Number(segFiles(fs).at(-1)!.slice(0, 20));
    const torn = segmentFile(lastBase + 500);
    fs.close(fs.open(`${DIR}/${torn}`, 'wx'));
    fs.failWrites((p) => (p.endsWith('.seg') ? 'ENOSPC' : undefined));

    const full = await open(fs);
    expect(full.getSync('k7')?.toString()).toBe('z'.repeat(200));
    expect(full.stats().keys).toBe(8);
    const err = await full.set('w', '1').then(
      () => undefined,
      (e: unknown) => e as { code: string; message: string },
    );
    expect(err).toMatchObject({ code: 'IO_ERROR' });
    expect(err?.message).toMatch(/ENOSPC.*read-only until a new segment can be created/);
    expect(await codeOf(full.delete('k1'))).toBe('IO_ERROR');
    expect(full.getSync('k1')).toBeDefined();
    // Space is freed: writes are accepted again by themselves.
    fs.failWrites(undefined);
    await sleep(250);
    await full.set('w', '1');
    expect(full.getSync('w')?.toString()).toBe('1');
    await full.close();
    const again = await open(fs);
    expect(again.getSync('w')?.toString()).toBe('1');
    expect(again.stats().recovery.corruptions).toBe(0);
    await again.close();
  });

  it('an empty directory on a full disk opens: nothing to read, writes IO_ERROR, then accepted', async () => {
    const fs = new MemFs();
    fs.mkdirp(DIR);
    fs.failWrites((p) => (p.endsWith('.seg') ? 'ENOSPC' : undefined));
    const store = await open(fs);
    expect(store.getSync('a')).toBeUndefined();
    expect(store.stats().segments).toEqual([]);
    expect(await codeOf(store.set('a', '1'))).toBe('IO_ERROR');
    expect(segFiles(fs)).toEqual([]);
    fs.failWrites(undefined);
    await sleep(250);
    await store.set('a', '1');
    await store.close();
    const again = await open(fs);
    expect(again.getSync('a')?.toString()).toBe('1');
    await again.close();
  });
});

describe('the lock on a full disk (B)', () => {
  it('LOCK cannot hold the pid: an empty LOCK plus an owner file name us, and both go at close', async () => {
    const fs = new MemFs();
    fs.mkdirp(DIR);
    fs.failWrites(() => 'ENOSPC');
    const store = await open(fs);
    expect(fs.readFile(`${DIR}/LOCK`).length).toBe(0);
    expect(fs.readdir(DIR).filter((n) => n.startsWith('LOCK.'))).toHaveLength(1);
    expect(lockOwner(fs, DIR)).toBe(process.pid);
    await expect(open(fs)).rejects.toMatchObject({ code: 'LOCKED' });
    fs.failWrites(undefined);
    await store.close();
    expect(fs.readdir(DIR).filter((n) => n.startsWith('LOCK'))).toEqual([]);
  });

  it('an empty LOCK whose owner file names a live process is honoured; a dead one is taken over', async () => {
    const fs = new MemFs();
    fs.mkdirp(DIR);
    fs.close(fs.open(`${DIR}/LOCK`, 'wx'));
    const live = lockOwnerFile(process.ppid, '');
    fs.close(fs.open(`${DIR}/${live}`, 'wx'));
    expect(lockOwner(fs, DIR)).toBe(process.ppid);
    await expect(open(fs)).rejects.toThrow(new RegExp(`in use by process ${process.ppid}`));
    fs.unlink(`${DIR}/${live}`);
    fs.close(fs.open(`${DIR}/${lockOwnerFile(2 ** 22 + 12345, '')}`, 'wx')); // no such pid (above pid_max)
    expect(lockOwner(fs, DIR)).toBeUndefined();
    const store = await open(fs);
    expect(fs.readdir(DIR).filter((n) => n.startsWith('LOCK.'))).toEqual([]);
    expect(lockOwner(fs, DIR)).toBe(process.pid);
    await store.close();
  });
});

describe('ENOSPC appending to the active segment (A)', () => {
  it('refuses each write with IO_ERROR, logs it in full once, then one line per interval, then the recovery', async () => {
    const fs = new MemFs();
    const clock = new ManualClock();
    const { logger, lines } = captureLogger();
    const store = await open(fs, { logger, clock });
    await store.set('before', 'v');
    fs.failWrites((p) => (p.endsWith('.seg') ? 'ENOSPC' : undefined));
    const errors = () => lines.filter((l) => l.level === 50);
    await expect(store.set('k0', 'v')).rejects.toThrow(
      /^writing to the log failed: .*ENOSPC.*; free disk space: writes resume by themselves$/,
    );
    for (let i = 1; i < 20; i++) expect(await codeOf(store.set(`k${i}`, 'v'))).toBe('IO_ERROR');
    // The first failure, with its error; the other 19 ticks' failures are only counted.
    expect(errors()).toHaveLength(1);
    expect(errors()[0]!.msg).toBe('a write to the log failed; the writes of this tick are refused');
    expect((errors()[0]!.err as { code?: string }).code).toBe('ENOSPC');
    clock.advance(REPEATED_ERROR_LOG_MS);
    expect(await codeOf(store.set('late', 'v'))).toBe('IO_ERROR');
    expect(errors()).toHaveLength(2);
    expect(errors()[1]!.msg).toMatch(/^a write to the log failed 20 more times in the last 30 s: .*ENOSPC/);
    fs.failWrites(undefined);
    await store.set('after', 'v');
    await store.set('after2', 'v');
    expect(lines.filter((l) => /works again/.test(String(l.msg))).map((l) => l.msg)).toEqual([
      'a write to the log works again after 21 failures',
    ]);
    expect(store.getSync('before')?.toString()).toBe('v');
    expect(store.getSync('k0')).toBeUndefined();
    expect(store.getSync('after')?.toString()).toBe('v');
    await store.close();
  });
});
