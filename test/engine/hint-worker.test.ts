/**
 * Hints built in the worker thread (hint-worker.ts), the real file system's
 * path: the active segment keeps no hint while written, and every sealed
 * segment's `.hint` file equals what a scan of its file gives (each key's
 * last record in it, in record order, tombstones and expired values
 * included), under sets with and without TTLs, overwrites, deletes, batches,
 * PEXPIRE and reopens; a restart from those hints gives the keydir a restart
 * by scanning gives. And a process killed after sealing but before the hint
 * is written: the next open scans that segment, finds every key, and writes
 * its hint.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/engine/clock.js';
import { parseName } from '../../src/engine/filenames.js';
import { nodeFs } from '../../src/engine/fs.js';
import { encodeHint, type HintEntry } from '../../src/engine/hint.js';
import { markRealFiles } from '../../src/engine/hint-worker.js';
import { scanRecords } from '../../src/engine/segment.js';
import { SEGMENT_HEADER_BYTES } from '../../src/engine/segment-header.js';
import { openStore, type Store } from '../../src/engine/store.js';
import {
  buildEngine,
  FIXTURES,
  noSyncFs,
  removeEngineBuilds,
  removeTempDirs,
  silentLogger,
  tempDir,
} from './helpers.js';

/** nodeFs without fsyncs (a logic test; the kill test below uses nodeFs), marked so the worker builds the hints. */
const realNoSyncFs = markRealFiles({ ...noSyncFs });

afterAll(() => {
  removeTempDirs();
  removeEngineBuilds();
});

/** What a scan of the segment file at `path` gives as its hint (the test's own, not the engine's). */
function scannedHint(path: string): Buffer {
  const base = parseName(path.split('/').pop()!)!.baseOffset;
  const fd = nodeFs.open(path, 'r');
  try {
    const last = new Map<string, HintEntry>();
    const r = scanRecords(nodeFs, fd, SEGMENT_HEADER_BYTES, nodeFs.size(fd), (rec) => {
      const h = rec.header;
      last.delete(rec.key);
      last.set(rec.key, {
        key: rec.key,
        offset: h.offset,
        position: rec.position,
        valueLength: h.valueLength,
        expiresAt: h.expiresAt,
        flags: h.flags,
      });
    });
    expect(r.problem).toBeUndefined();
    return encodeHint(base, [...last.values()]);
  } finally {
    nodeFs.close(fd);
  }
}

function keydirOf(s: Store): string[] {
  const out: string[] = [];
  for (const [k] of s.keydir.entries()) {
    const loc = s.keydir.get(k)!;
    out.push(
      `${k} ${s.segments[loc.segment]!.baseOffset}@${loc.position} ${loc.valueLength} ${loc.expiresAt}`,
    );
  }
  return out.sort();
}

type Op =
  | { t: 'set'; key: number; size: number; ttlMs: number | null }
  | { t: 'del'; key: number }
  | { t: 'batch'; items: { key: number; del: boolean }[] }
  | { t: 'expire'; key: number; ttlMs: number | null }
  | { t: 'advance'; ms: number }
  | { t: 'reopen' };

const key = fc.integer({ min: 0, max: 15 });
const ttl = fc.option(fc.integer({ min: 1, max: 3000 }), { freq: 3 });
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 12,
    arbitrary: fc.record({ t: fc.constant('set' as const), key, size: fc.nat({ max: 200 }), ttlMs: ttl }),
  },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('del' as const), key }) },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('batch' as const),
      items: fc.array(fc.record({ key, del: fc.boolean() }), { minLength: 1, maxLength: 5 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('expire' as const),
      key,
      ttlMs: fc.option(fc.integer({ min: 1, max: 3000 })),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ t: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 2000 }) }),
  },
  { weight: 1, arbitrary: fc.constant({ t: 'reopen' as const }) },
);

describe('hints built in the worker thread', () => {
  it('equal the scan of each sealed segment; a restart from them gives the scanned keydir', async () => {
    let sealedInAll = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 40, maxLength: 150 }), async (ops) => {
        const clock = new ManualClock();
        const dir = tempDir();
        const open = () =>
          openStore(dir, {
            fs: realNoSyncFs,
            fsync: 'never',
            maxSegmentBytes: 1024,
            cacheBytes: 0,
            clock,
            logger: silentLogger,
            compaction: { auto: false },
          });
        let s = await open();
        try {
          for (const o of ops) {
            const k = `key-${'key' in o ? o.key : 0}`;
            if (o.t === 'set') {
              await s.set(k, `${k}:${'v'.repeat(o.size)}`, o.ttlMs === null ? {} : { ttlMs: o.ttlMs });
            } else if (o.t === 'del') {
              await s.delete(k);
            } else if (o.t === 'batch') {
              await s.batch(
                o.items.map((it) =>
                  it.del
                    ? { type: 'del' as const, key: `key-${it.key}` }
                    : { type: 'set' as const, key: `key-${it.key}`, value: `b${it.key}` },
                ),
              );
            } else if (o.t === 'expire') {
              await s.expire(k, o.ttlMs);
            } else if (o.t === 'advance') {
              clock.advance(o.ms);
            } else {
              await s.close();
              s = await open();
            }
          }
          s.flushPending();
          expect(s.active.hint).toBeUndefined();
          expect(s.active.hintScan).toBe(true);
          await s.settleBackground();
          let sealed = 0;
          for (const seg of s.ordered) {
            if (seg === s.active) continue;
            expect(seg.hinted).toBe(true);
            const file = fs.readFileSync(join(dir, seg.name.replace('.seg', '.hint')));
            expect(file.equals(scannedHint(join(dir, seg.name)))).toBe(true);
            sealed++;
          }
          sealedInAll += sealed;
          await s.close();
          s = await open();
          const fromHints = keydirOf(s);
          expect(s.recoveryStats.fromHints).toBe(sealed);
          await s.close();
          for (const f of fs.readdirSync(dir)) if (f.endsWith('.hint')) fs.rmSync(join(dir, f));
          s = await open();
          expect(s.recoveryStats.fromHints).toBe(0);
          expect(keydirOf(s)).toEqual(fromHints);
        } finally {
          await s.close();
        }
      }),
      { numRuns: 3 },
    );
    expect(sealedInAll).toBeGreaterThan(5);
  }, 120_000);

  it('are not used by a file system other than nodeFs (or one marked as its wrapper): there the active segment builds its hint', async () => {
    const s = await openStore(tempDir(), { fs: noSyncFs, logger: silentLogger, compaction: { auto: false } });
    try {
      expect(s.active.hint).toBeDefined();
      expect(s.active.hintScan).toBe(false);
    } finally {
      await s.close();
    }
  });
});

describe('a kill after sealing, before the hint is written', () => {
  let engine: string;
  beforeAll(() => {
    engine = buildEngine();
  }, 120_000);

  it('costs a scan of that segment at the next open, which finds every key and writes its hint', async () => {
    const dir = tempDir();
    const KEYS = 3000;
    const { out, signal } = await new Promise<{ out: string; signal: string | null }>((resolve, reject) => {
      const child = spawn(
        process.execPath,
        [join(FIXTURES, 'hint-kill.mjs'), dir, String(64 * 1024), String(KEYS)],
        { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SEGKV_ENGINE: engine } },
      );
      let out = '';
      let err = '';
      child.stdout!.on('data', (b: Buffer) => {
        out += b.toString();
      });
      child.stderr!.on('data', (b: Buffer) => {
        err += b.toString();
      });
      child.on('error', reject);
      child.on('close', (_code, signal) => (err ? reject(new Error(err)) : resolve({ out, signal })));
    });
    expect(signal).toBe('SIGKILL');
    const m = /segments (\d+) hints (\d+)/.exec(out)!;
    expect(m).not.toBeNull();
    const [segs, hints] = [Number(m[1]), Number(m[2])];
    // Several segments were sealed; at least the last one had no hint when the process died.
    expect(segs).toBeGreaterThan(3);
    expect(hints).toBeLessThan(segs - 1);

    const open = () =>
      openStore(dir, { logger: silentLogger, maxSegmentBytes: 64 * 1024, compaction: { auto: false } });
    let s = await open();
    try {
      expect(s.recoveryStats.scanned).toBeGreaterThan(0);
      for (let i = 0; i < KEYS; i++) {
        const got = s.getSync(`key-${i}`)?.toString();
        const want = i % 5 === 0 ? undefined : i % 2 === 0 ? `v2-${i}` : `v1-${i}-${'x'.repeat(i % 50)}`;
        expect(got, `key-${i}`).toBe(want);
      }
      expect(s.size).toBe(KEYS - KEYS / 5);
      // The scanned segments get their hints in the background; the next open loads them all.
      await s.settleBackground();
      for (const seg of s.ordered) {
        if (seg === s.active) continue;
        expect(seg.hinted, seg.name).toBe(true);
        const file = fs.readFileSync(join(dir, seg.name.replace('.seg', '.hint')));
        expect(file.equals(scannedHint(join(dir, seg.name))), seg.name).toBe(true);
      }
      const sealed = s.ordered.length - 1;
      await s.close();
      s = await open();
      expect(s.recoveryStats.fromHints).toBe(sealed);
      expect(s.size).toBe(KEYS - KEYS / 5);
    } finally {
      await s.close();
    }
  }, 120_000);
});
