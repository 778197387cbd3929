/**
 * The idle memory reducer (server/memory-reducer.ts): one reduce-memory GC
 * once the server went quiet after work, none while it works, none twice for
 * one quiet spell; and the GC it asks for is V8's reduce-memory one (the
 * young generation back to its minimum, which a plain major GC right after a
 * burst of allocation does not do).
 */
import v8 from 'node:v8';
import { describe, expect, it, vi } from 'vitest';
import { SLAB_BYTES } from '../../src/engine/limits.js';
import { tableBuffer } from '../../src/engine/slabs.js';
import { KvClient } from '../../src/index.js';
import { MemoryReducer, reduceMemory } from '../../src/server/memory-reducer.js';
import { spawnServer } from './spawn.js';

const silent = { debug() {}, warn() {} } as unknown as ConstructorParameters<typeof MemoryReducer>[1];

function newSpaceBytes(): number {
  return v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')!.space_size;
}

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Grows the young generation: objects that survive a few scavenges, allocated fast. */
function churn(): unknown[] {
  const kept: unknown[] = [];
  for (let i = 0; i < 400_000; i++) {
    kept.push({ i, s: `v${i}` });
    if (kept.length > 100_000) kept.splice(0, 50_000);
  }
  return kept;
}

describe('MemoryReducer', () => {
  const IDLE_MS = 100;
  const pause = (ms: number) => new Promise((res) => setTimeout(res, ms));

  it('reduces once after a quiet interval that follows work, never while the count moves', async () => {
    let activity = 0;
    const r = new MemoryReducer(() => activity, silent, IDLE_MS, 0);
    await pause(IDLE_MS + 30);
    r.check(); // the first quiet interval after start (opening the store is work)
    await until(() => r.reductions === 1);
    await pause(IDLE_MS + 30);
    r.check();
    await pause(50);
    expect(r.reductions).toBe(1);
    for (let i = 0; i < 5; i++) {
      activity += 10;
      r.check();
      await pause(IDLE_MS + 30);
    }
    await pause(50);
    expect(r.reductions).toBe(1);
    r.check(); // quiet for one interval after work
    await until(() => r.reductions === 2);
    await pause(IDLE_MS + 30);
    r.check();
    await pause(IDLE_MS + 30);
    r.check();
    await pause(50);
    expect(r.reductions).toBe(2); // the same quiet spell
    activity++;
    r.check();
    await pause(IDLE_MS + 30);
    r.check();
    await until(() => r.reductions === 3);
  });

  it('drops the buffers kept for speed right before each reduction, and only then', async () => {
    let activity = 0;
    const events: string[] = [];
    const r = new MemoryReducer(
      () => activity,
      silent,
      IDLE_MS,
      0,
      () => events.push(`release ${r.reductions}`),
    );
    await pause(IDLE_MS + 30);
    r.check();
    await until(() => r.reductions === 1);
    expect(events).toEqual(['release 0']);
    activity++;
    r.check(); // working: nothing released
    expect(events).toEqual(['release 0']);
    await pause(IDLE_MS + 30);
    r.check();
    await until(() => r.reductions === 2);
    expect(events).toEqual(['release 0', 'release 1']);
  });

  it('counts quiet in wall time: two checks in a row with no time between are not an idle interval', async () => {
    let activity = 0;
    const r = new MemoryReducer(() => activity, silent, 1000, 0);
    activity++;
    r.check();
    r.check(); // as when a long loop turn runs the interval's callback twice
    await pause(50);
    expect(r.reductions).toBe(0);
  });

  it('does not reduce when the heap grew less than its minimum since the last one', async () => {
    let activity = 0;
    const r = new MemoryReducer(() => activity, silent, IDLE_MS, 1024 ** 4);
    await pause(IDLE_MS + 30);
    r.check();
    activity++;
    r.check();
    await pause(IDLE_MS + 30);
    r.check();
    await pause(50);
    expect(r.reductions).toBe(0);
  });

  it("does not count a padded table buffer's never-written tail as growth (slabs.ts unwrittenBytes)", async () => {
    let activity = 0;
    const r = new MemoryReducer(() => activity, silent, IDLE_MS, 8 * 1024 * 1024);
    await pause(IDLE_MS + 30);
    r.check(); // V8's heap alone is past 8 MiB here: the first reduction runs
    await until(() => r.reductions === 1);
    // A keydir table of 256 KiB padded (no wasm memory to be had): V8 counts its SLAB_BYTES (36 MiB) buffer whole.
    vi.stubGlobal('WebAssembly', undefined);
    let table: ArrayBuffer;
    try {
      table = tableBuffer(256 * 1024);
    } finally {
      vi.unstubAllGlobals();
    }
    activity++;
    r.check();
    await pause(IDLE_MS + 30);
    r.check();
    await pause(50);
    expect(r.reductions).toBe(1);
    expect(table.byteLength).toBe(SLAB_BYTES);
  });

  it("runs V8's reduce-memory GC: the young generation shrinks to its minimum right after a burst", async () => {
    const kept = churn();
    const grown = newSpaceBytes();
    expect(grown).toBeGreaterThan(4 * 1024 * 1024); // the precondition: the burst grew it
    kept.length = 0;
    const err = await new Promise<Error | null>((res) => reduceMemory(res));
    expect(err).toBeNull();
    expect(newSpaceBytes()).toBeLessThanOrEqual(2 * 1024 * 1024);
  });
});

describe('kv-server', () => {
  it('gives memory back once its clients went quiet after a load', async () => {
    const s = await spawnServer({ args: ['--log-level', 'debug'] });
    try {
      const kv = new KvClient({ port: s.port, reconnect: false });
      const value = 'x'.repeat(2000);
      for (let i = 0; i < 20; i++) {
        await Promise.all(Array.from({ length: 1000 }, (_, j) => kv.set(`k${i}:${j}`, value)));
      }
      const lines = () =>
        s
          .stderr()
          .split('\n')
          .filter((l) => l.includes('idle: memory given back'));
      const seen = lines().length;
      await until(() => lines().length > seen, 15_000);
      const line = lines()[seen]!;
      const { beforeBytes, afterBytes } = JSON.parse(line) as { beforeBytes: number; afterBytes: number };
      expect(afterBytes).toBeLessThan(beforeBytes);
      await kv.close();
    } finally {
      await s.stop();
    }
  }, 60_000);

  it('--idle-gc-ms 0 turns it off: the same load and quiet give nothing back', async () => {
    const s = await spawnServer({ args: ['--log-level', 'debug', '--idle-gc-ms', '0'] });
    try {
      const kv = new KvClient({ port: s.port, reconnect: false });
      const value = 'x'.repeat(2000);
      for (let i = 0; i < 20; i++) {
        await Promise.all(Array.from({ length: 1000 }, (_, j) => kv.set(`k${i}:${j}`, value)));
      }
      await new Promise((r) => setTimeout(r, 5_000)); // five default intervals of quiet
      expect(s.stderr()).not.toContain('idle: memory given back');
      expect(s.stderr()).toContain('"msg":"listening"'); // the log was read
      await kv.close();
    } finally {
      await s.stop();
    }
  }, 60_000);
});
