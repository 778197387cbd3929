/**
 * bench:replication's SET run (tools/bench/replication-runs.ts setRun) warms
 * the servers up first, as bench:server does: `warmupS` seconds of the same
 * load that are not recorded, then the replicas caught up before the
 * measured run starts. Run from dist/ (the build the server tests spawn: a
 * kv-server primary and a replica, kv-bench as a child); no timing
 * assertions, only what was written, counted and caught up.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { KvClient } from '../../src/index.js';
import { REPO } from './helpers.js';

type Runs = typeof import('../../tools/bench/replication-runs.js');
type Lib = typeof import('../../tools/bench/lib.js');

const DIST = join(REPO, 'dist', 'tools', 'bench');

async function load(): Promise<{ runs: Runs; lib: Lib }> {
  const file = join(DIST, 'replication-runs.js');
  if (!existsSync(file)) throw new Error(`${file} is missing: npm run build first`);
  const runs = (await import(pathToFileURL(file).href)) as Runs;
  const lib = (await import(pathToFileURL(join(DIST, 'lib.js')).href)) as Lib;
  return { runs, lib };
}

async function logEnd(port: number): Promise<number> {
  const c = new KvClient<string>({ port, reconnect: false });
  try {
    return (await c.role()).end;
  } finally {
    await c.close();
  }
}

/** The load both runs below make, but for its duration, warm-up and lag polling. */
const benchLoad = { clients: 2, pipeline: 4, valueBytes: 10, keys: 1000, seed: 1 };

describe('bench:replication setRun', () => {
  it('runs warmupS seconds of the same load unrecorded first, and measures from caught-up replicas', async () => {
    const { runs, lib } = await load();
    const root = new lib.TempRoot('segkv-test-replbench-');
    try {
      const t = await runs.startTopology('segkv', '', root, 1);
      try {
        const r = await runs.setRun(t, { ...benchLoad, durationS: 0.5, warmupS: 0.5, lagPollMs: 10 });
        expect(r.result.errors).toBe(0);
        expect(r.result.requests).toBeGreaterThan(0);
        // Every SET is one record: the warm-up's were written but not counted.
        const end = await logEnd(t.primary.port);
        expect(end).toBeGreaterThan(r.result.requests * 1.2);
        expect(Number.isFinite(r.cpuUsPerSet.primary)).toBe(true);
        expect(r.lag).toHaveLength(1);
        expect(r.lag[0]!.samples).toBeGreaterThan(0);
      } finally {
        await t.stop();
      }
      const cold = await runs.startTopology('segkv', '', root, 0);
      try {
        const r = await runs.setRun(cold, { ...benchLoad, durationS: 0.3, warmupS: 0, lagPollMs: 0 });
        // No warm-up: every record written is a SET counted.
        expect(await logEnd(cold.primary.port)).toBe(r.result.requests);
      } finally {
        await cold.stop();
      }
    } finally {
      for (const s of runs.live) s.killNow();
      root.cleanup();
    }
  }, 60_000);
});
