/**
 * The rewrite process's warm-up (warm-up.ts): it leaves V8's optimised code
 * for the rewrite's per-record scan behind (checked with V8's own
 * %GetOptimizationStatus in a child node run as the rewrite process is:
 * --single-threaded), and nothing else: its temporary directory is removed,
 * and a temporary directory it cannot create means no warm-up, not an error.
 * That a rewrite sent during the warm-up waits for it and writes the same
 * bytes is in worker.test.ts.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { warmUpRewrite } from '../../../src/engine/compaction/warm-up.js';
import { removeTempDirs, tempDir } from '../helpers.js';

const DIST = fileURLToPath(new URL('../../../dist/src/engine/compaction/', import.meta.url));
/** %GetOptimizationStatus bit: the function has optimised code (V8's OptimizationStatus::kOptimized). */
const OPTIMIZED = 1 << 4;

/**
 * The optimisation status of the scan's per-record methods in a fresh node
 * run as the rewrite process runs (--single-threaded), after the warm-up or
 * without it.
 */
function scanStatus(warm: boolean): { step: number; keepLive: number } {
  const script = `
    import { InputScan } from ${JSON.stringify(join(DIST, 'rewrite.js'))};
    import { warmUpRewrite } from ${JSON.stringify(join(DIST, 'warm-up.js'))};
    if (${warm}) await warmUpRewrite();
    const p = InputScan.prototype;
    console.log(JSON.stringify({ step: %GetOptimizationStatus(p.step), keepLive: %GetOptimizationStatus(p.keepLive) }));
  `;
  const out = execFileSync(
    process.execPath,
    ['--single-threaded', '--allow-natives-syntax', '--input-type=module', '-e', script],
    { encoding: 'utf8' },
  );
  return JSON.parse(out) as { step: number; keepLive: number };
}

afterAll(() => removeTempDirs());

describe('the rewrite process warm-up', () => {
  it("leaves the scan's per-record methods optimised by V8 (they are not without it)", () => {
    expect(fs.existsSync(join(DIST, 'warm-up.js')), 'needs npm run build').toBe(true);
    const cold = scanStatus(false);
    expect(cold.step & OPTIMIZED, 'step, no warm-up').toBe(0);
    expect(cold.keepLive & OPTIMIZED, 'keepLive, no warm-up').toBe(0);
    const warm = scanStatus(true);
    expect(warm.step & OPTIMIZED, `step after the warm-up (status ${warm.step})`).toBe(OPTIMIZED);
    expect(warm.keepLive & OPTIMIZED, `keepLive after the warm-up (status ${warm.keepLive})`).toBe(OPTIMIZED);
  }, 60_000);

  it('removes its temporary directory', async () => {
    const tmp = tempDir();
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = tmp;
    try {
      await warmUpRewrite();
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
    }
    expect(fs.readdirSync(tmp)).toEqual([]);
  }, 60_000);

  it('without a writable temporary directory it does nothing and does not fail', async () => {
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = join(tempDir(), 'missing', 'deeper');
    try {
      await expect(warmUpRewrite()).resolves.toBeUndefined();
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
    }
  });
});
