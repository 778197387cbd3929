/**
 * A compaction that fails must leave the store exactly as it was, say why,
 * and be retried (KAFKA-8725: a compactor that dies silently while the disk
 * grows). Faults are injected by wrapping nodeFs: ENOSPC on writes to
 * `*.compacting` files after N bytes (N from the first byte to the last one
 * a compaction writes), a failing fsync of an output, of the manifest, of
 * the directory at the commit point. After each: store.compact() rejects,
 * every key reads as before, the segment files are the same (the only new
 * files are the empty active segment and the old active one's hint and
 * index, from sealing it first), no temporary file is left, stats count the
 * failure with its cause; writes go on; a reopen sees the same data. With
 * automatic compaction on, the run is retried with growing gaps (backoff)
 * and succeeds once the fault is gone.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hintFile, indexFile, parseName } from '../../../src/engine/filenames.js';
import {
  type Fs,
  ManualClock,
  nodeFs,
  openStore,
  type Store,
  type StoreOptions,
} from '../../../src/engine/index.js';
import { SEGMENT_HEADER_BYTES } from '../../../src/engine/segment-header.js';
import { silentLogger } from '../helpers.js';
import { dataset, keyName } from './fixtures/dataset.js';
import {
  expectModel,
  expectRecount,
  fastTempDir,
  leftovers,
  Model,
  removeFastTempDirs,
  until,
} from './util.js';

const KEYS = Array.from({ length: 60 }, (_, i) => keyName(i));

interface Faults {
  /** Bytes that writes to `*.compacting` files may still take before ENOSPC (undefined: no limit). */
  compactingBytesLeft?: number | undefined;
  /** fsync (async or sync) of a file whose path this matches fails with EIO. */
  failFsync?: (path: string) => boolean;
  /** fsyncDir fails with EIO (after this many more successful calls). */
  failFsyncDirAfter?: number | undefined;
  /** rename of a file whose source path this matches fails with EIO. */
  failRename?: ((from: string) => boolean) | undefined;
}

function errno(code: string, syscall: string, path: string): NodeJS.ErrnoException {
  const e: NodeJS.ErrnoException = new Error(`${code}: injected fault, ${syscall} '${path}'`);
  e.code = code;
  e.syscall = syscall;
  return e;
}

/** nodeFs with the faults in `f` (changeable while the store runs), counting bytes written to outputs. */
function faultyFs(f: Faults): { fs: Fs; compactingBytes: () => number } {
  const paths = new Map<number, string>();
  let written = 0;
  const fsyncCheck = (fd: number) => {
    const path = paths.get(fd) ?? '?';
    if (f.failFsync?.(path)) throw errno('EIO', 'fsync', path);
  };
  const wrapped: Fs = {
    ...nodeFs,
    open(path, flags) {
      const fd = nodeFs.open(path, flags);
      paths.set(fd, path);
      return fd;
    },
    close(fd) {
      paths.delete(fd);
      nodeFs.close(fd);
    },
    write(fd, buf, offset, length, position) {
      const path = paths.get(fd) ?? '?';
      if (path.endsWith('.compacting')) {
        const left = f.compactingBytesLeft;
        if (left !== undefined && length > left) {
          // A short write, then the device is full (as write(2) does).
          if (left > 0) nodeFs.write(fd, buf, offset, left, position);
          f.compactingBytesLeft = 0;
          written += left;
          throw errno('ENOSPC', 'write', path);
        }
        if (left !== undefined) f.compactingBytesLeft = left - length;
        written += length;
      }
      nodeFs.write(fd, buf, offset, length, position);
    },
    async fsync(fd) {
      fsyncCheck(fd);
      await nodeFs.fsync(fd);
    },
    fsyncSync(fd) {
      fsyncCheck(fd);
      nodeFs.fsyncSync(fd);
    },
    fsyncDir(dir) {
      if (f.failFsyncDirAfter !== undefined) {
        if (f.failFsyncDirAfter === 0) throw errno('EIO', 'fsync', dir);
        f.failFsyncDirAfter--;
      }
      nodeFs.fsyncDir(dir);
    },
    rename(from, to) {
      if (f.failRename?.(from)) throw errno('EIO', 'rename', from);
      nodeFs.rename(from, to);
    },
  };
  return { fs: wrapped, compactingBytes: () => written };
}

/** name → sha1 of the content, for every file but LOCK. */
function snapshot(dir: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const n of fs.readdirSync(dir).sort()) {
    if (n === 'LOCK') continue;
    m.set(
      n,
      createHash('sha1')
        .update(fs.readFileSync(join(dir, n)))
        .digest('hex'),
    );
  }
  return m;
}

/**
 * Every file of `before` is unchanged; the only new ones are what sealing the
 * active segment makes (its hint and index, and an empty new active segment).
 */
function expectSameFiles(dir: string, before: Map<string, string>, ctx: string): void {
  const after = snapshot(dir);
  for (const [n, h] of before) expect(after.get(n), `${ctx}: ${n} unchanged`).toBe(h);
  const segs = [...before.keys()].filter((n) => n.endsWith('.seg')).sort();
  const lastBase = parseName(segs[segs.length - 1]!)!.baseOffset;
  for (const n of after.keys()) {
    if (before.has(n)) continue;
    const p = parseName(n);
    expect(p, `${ctx}: unexpected file ${n}`).toBeDefined();
    if (p!.kind === 'seg') {
      expect(p!.baseOffset, `${ctx}: new segment ${n} is the new active one`).toBeGreaterThan(lastBase);
      expect(fs.statSync(join(dir, n)).size, `${ctx}: ${n} is empty`).toBe(SEGMENT_HEADER_BYTES);
    } else {
      expect([hintFile(lastBase), indexFile(lastBase)], `${ctx}: unexpected file ${n}`).toContain(n);
    }
  }
}

let template: string;
/** The template's data; tests that write more use a copy (fresh()). */
let model: Model;
const fresh = (): Model => {
  const m = new Model(clock);
  for (const [k, e] of model.map) m.map.set(k, e);
  return m;
};
const clock = new ManualClock();
/** Bytes a successful whole-log compaction of the template writes to `.compacting` files. */
let outputBytes = 0;

const baseOpts = (fsImpl: Fs, extra: Partial<StoreOptions> = {}): StoreOptions => ({
  maxSegmentBytes: 2048,
  fsync: 'never',
  logger: silentLogger,
  cacheBytes: 0,
  clock,
  fs: fsImpl,
  compaction: { auto: false },
  ...extra,
});

/** A copy of the template directory. */
function copy(): string {
  const d = fastTempDir();
  fs.cpSync(template, d, { recursive: true });
  return d;
}

beforeAll(async () => {
  template = fastTempDir();
  model = new Model(clock);
  const store = await openStore(template, baseOpts(nodeFs));
  for (const op of dataset(11, 500, KEYS.length)) {
    if (op.t === 'set') {
      const ttlMs = op.ttl === 'short' ? 1 : op.ttl === 'long' ? 3_600_000 : undefined;
      await store.set(op.key, op.value, ttlMs === undefined ? {} : { ttlMs });
      model.set(op.key, op.value, ttlMs);
    } else if (op.t === 'del') {
      await store.delete(op.key);
      model.delete(op.key);
    } else {
      await store.batch(op.ops);
      for (const m of op.ops) m.type === 'set' ? model.set(m.key, m.value) : model.delete(m.key);
    }
  }
  await store.close();
  clock.advance(10); // the short TTLs have passed

  // A dry run on a copy: how many bytes a compaction writes to its outputs.
  const d = copy();
  const f = faultyFs({});
  const s = await openStore(d, baseOpts(f.fs));
  await s.compact();
  outputBytes = f.compactingBytes();
  expectModel(s, model, KEYS, 'dry run');
  await s.close();
  expect(outputBytes).toBeGreaterThan(2048);
});

afterAll(removeFastTempDirs);

/** Opens a copy with `faults`, compacts (expecting a rejection), checks the store is as it was; returns the store. */
async function failOnce(faults: Faults, cause: RegExp, ctx: string): Promise<{ store: Store; dir: string }> {
  const model = fresh();
  const dir = copy();
  const f = faultyFs(faults);
  const store = await openStore(dir, baseOpts(f.fs));
  const before = snapshot(dir);
  await expect(store.compact(), ctx).rejects.toThrow(cause);
  expectModel(store, model, KEYS, ctx);
  await expectRecount(store, clock.now(), ctx);
  expect(leftovers(dir), `${ctx}: temporary files left`).toEqual([]);
  expectSameFiles(dir, before, ctx);
  const st = store.stats().compaction;
  expect(st.failures, ctx).toBe(1);
  expect(st.runs, ctx).toBe(0);
  expect(st.running, ctx).toBe(false);
  expect(st.lastError, ctx).toMatch(cause);
  // The store still takes writes, and a reopen sees the same data.
  await store.set(KEYS[0]!, 'after the failure');
  model.set(KEYS[0]!, 'after the failure');
  expectModel(store, model, KEYS, `${ctx}, after a write`);
  await store.close();
  const again = await openStore(dir, baseOpts(nodeFs));
  expect(leftovers(dir), `${ctx}: temporary files left after reopen`).toEqual([]);
  expectModel(again, model, KEYS, `${ctx}, reopened`);
  // With the fault gone, compaction works.
  await again.compact();
  expectModel(again, model, KEYS, `${ctx}, compacted after the fault`);
  return { store: again, dir };
}

describe('a compaction that fails leaves the store as it was', () => {
  it('ENOSPC on the outputs after N bytes, from the first byte (segment header) to the last (index file)', async () => {
    const points = [0, 1, 30, 500, Math.floor(outputBytes / 2), outputBytes - 40, outputBytes - 1];
    for (const n of points) {
      const { store } = await failOnce(
        { compactingBytesLeft: n },
        /ENOSPC/,
        `ENOSPC after ${n} of ${outputBytes} output bytes`,
      );
      await store.close();
    }
  });

  it('fsync of an output segment fails (EIO)', async () => {
    const { store } = await failOnce(
      { failFsync: (p) => p.endsWith('.seg.compacting') },
      /EIO/,
      'fsync of an output segment fails',
    );
    await store.close();
  });

  it('fsync of an output hint fails (EIO)', async () => {
    const { store } = await failOnce(
      { failFsync: (p) => p.endsWith('.hint.compacting') },
      /EIO/,
      'fsync of an output hint fails',
    );
    await store.close();
  });

  it('fsync of the manifest (COMPACTION.tmp) fails: no COMPACTION.tmp is left behind', async () => {
    const { store } = await failOnce(
      { failFsync: (p) => p.endsWith('COMPACTION.tmp') },
      /EIO/,
      'fsync of the manifest fails',
    );
    await store.close();
  });

  it('fsync of the directory at the commit point fails: nothing is lost, now or after a reopen', async () => {
    const model = fresh();
    const dir = copy();
    const faults: Faults = {};
    const f = faultyFs(faults);
    const store = await openStore(dir, baseOpts(f.fs));
    // compact() first seals the active segment (one directory fsync for its hint); the next one is the commit's.
    store.once('compaction', () => {
      faults.failFsyncDirAfter = 0;
    });
    await expect(store.compact()).rejects.toThrow(/EIO/);
    faults.failFsyncDirAfter = undefined;
    expect(store.stats().compaction.failures).toBe(1);
    expect(store.stats().compaction.lastError).toMatch(/EIO/);
    expectModel(store, model, KEYS, 'after the failed commit');
    await store.set(KEYS[1]!, 'written after the failed commit');
    model.set(KEYS[1]!, 'written after the failed commit');
    await store.close();
    // Whichever way the commit went, the next open has every key, once.
    const again = await openStore(dir, baseOpts(nodeFs));
    try {
      expect(leftovers(dir)).toEqual([]);
      expectModel(again, model, KEYS, 'reopened after the failed commit');
      await expectRecount(again, clock.now(), 'reopened after the failed commit');
      await again.compact();
      expectModel(again, model, KEYS, 'compacted after the failed commit');
    } finally {
      await again.close();
    }
  });
});

describe('a compaction that fails after its commit point', () => {
  it('a rename of the swap fails: compact() rejects saying a restart completes it, reads and writes go on, the reopen finishes the swap', async () => {
    const model = fresh();
    const dir = copy();
    let renames = 0;
    // The second output rename fails: the swap is half done on disk, the manifest stands.
    const faults: Faults = { failRename: (from) => from.endsWith('.compacting') && ++renames === 2 };
    const f = faultyFs(faults);
    const store = await openStore(dir, baseOpts(f.fs));
    await expect(store.compact()).rejects.toThrow(/restart to complete it/);
    faults.failRename = undefined;
    const st = store.stats().compaction;
    expect(st.failures).toBe(1);
    expect(st.lastError).toMatch(/EIO/);
    expect(fs.readdirSync(dir)).toContain('COMPACTION');
    // The store runs on its old segments (their files are open) until the restart.
    expectModel(store, model, KEYS, 'after the failed swap');
    for (const k of KEYS.slice(0, 10)) {
      await store.set(k, `after:${k}`);
      model.set(k, `after:${k}`);
    }
    await store.delete(KEYS[10]!);
    model.delete(KEYS[10]!);
    expectModel(store, model, KEYS, 'written after the failed swap');
    await expect(store.compact(), 'no second compaction before the restart').rejects.toThrow(
      /restart to complete it/,
    );
    await store.close();
    const again = await openStore(dir, baseOpts(nodeFs));
    try {
      expect(leftovers(dir)).toEqual([]);
      expectModel(again, model, KEYS, 'reopened: the swap finished');
      await expectRecount(again, clock.now(), 'reopened: the swap finished');
      await again.compact();
      expectModel(again, model, KEYS, 'compacted after the restart');
    } finally {
      await again.close();
    }
  });
});

describe('a compaction that meets corruption', () => {
  it('a flipped bit in a sealed, hinted segment: compact() rejects naming the file and byte, and swaps nothing in', async () => {
    const model = fresh();
    const dir = copy();
    // A record in the middle of the second segment (hinted, so compactable): flip a bit of its value.
    const seg = fs
      .readdirSync(dir)
      .filter((n) => n.endsWith('.seg'))
      .sort()[1]!;
    const size = fs.statSync(join(dir, seg)).size;
    const at = Math.floor((SEGMENT_HEADER_BYTES + size) / 2);
    const buf = fs.readFileSync(join(dir, seg));
    buf[at] = buf[at]! ^ 0x10;
    fs.writeFileSync(join(dir, seg), buf);
    const store = await openStore(dir, baseOpts(nodeFs));
    try {
      expect(
        store.stats().recovery.fromHints,
        'the damage is not seen at open: the hint is good',
      ).toBeGreaterThan(0);
      const before = snapshot(dir);
      const err = await store.compact().then(
        () => expect.fail('compact() should reject on a corrupt record'),
        (e: Error & { code?: string; file?: string }) => e,
      );
      expect(err.code).toBe('CORRUPTION');
      expect(err.file).toBe(seg);
      expect(err.message).toMatch(new RegExp(`${seg} at byte \\d+`));
      expect(store.stats().compaction.lastError).toMatch(seg);
      expect(store.stats().compaction.failures).toBe(1);
      expect(leftovers(dir)).toEqual([]);
      expectSameFiles(dir, before, 'after the corruption');
      // Every key whose record is intact still reads right.
      let damaged = 0;
      for (const k of KEYS) {
        try {
          const want = model.live(k);
          const got = store.getSync(k);
          if (want === undefined) expect(got).toBeUndefined();
          else expect(got?.equals(want.value)).toBe(true);
        } catch (e) {
          expect((e as { code?: string }).code).toBe('CORRUPTION');
          damaged++;
        }
      }
      expect(damaged).toBeLessThanOrEqual(1);
    } finally {
      await store.close();
    }
  });
});

describe('automatic compaction after a failure', () => {
  it('is retried with growing gaps (backoff) while the fault lasts, and succeeds once it is gone', async () => {
    const dir = copy();
    const faults: Faults = { compactingBytesLeft: 100 };
    const f = faultyFs(faults);
    const store = await openStore(
      dir,
      baseOpts(f.fs, {
        compaction: {
          auto: true,
          checkIntervalMs: 10,
          minIntervalMs: 0,
          minDeadBytes: 0,
          minDeadRatio: 0.1,
          maxBackoffMs: 200,
        },
      }),
    );
    try {
      const errorsAt: number[] = [];
      store.on('compaction', (e: { phase: string }) => {
        if (e.phase === 'error') {
          errorsAt.push(Date.now());
          faults.compactingBytesLeft = 100; // the disk stays full
        }
      });
      await until(() => errorsAt.length >= 4, 5000, 'four failed automatic runs');
      const st = store.stats().compaction;
      expect(st.failures).toBeGreaterThanOrEqual(4);
      expect(st.runs).toBe(0);
      expect(st.lastError).toMatch(/ENOSPC/);
      expect(leftovers(dir)).toEqual([]);
      expectModel(store, model, KEYS, 'while failing');
      // Backoff: checkIntervalMs · 2^failures, so at least 20, 40, 80 ms between the ends of runs.
      expect(errorsAt[1]! - errorsAt[0]!).toBeGreaterThanOrEqual(20);
      expect(errorsAt[2]! - errorsAt[1]!).toBeGreaterThanOrEqual(40);
      expect(errorsAt[3]! - errorsAt[2]!).toBeGreaterThanOrEqual(80);
      // The fault goes away: the next retry succeeds.
      store.removeAllListeners('compaction');
      faults.compactingBytesLeft = undefined;
      await until(() => store.stats().compaction.runs >= 1, 5000, 'a successful retry');
      expect(store.stats().compaction.lastError).toBeNull();
      expectModel(store, model, KEYS, 'after the successful retry');
      await expectRecount(store, clock.now(), 'after the successful retry');
      expect(leftovers(dir)).toEqual([]);
    } finally {
      await store.close();
    }
    const again = await openStore(dir, baseOpts(nodeFs));
    expectModel(again, model, KEYS, 'reopened');
    await again.close();
  });
});
