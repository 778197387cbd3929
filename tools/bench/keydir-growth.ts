/**
 * How long the keydir's longest calls take while it grows: fills one Keydir
 * with N new keys (16-byte keys, as the benchmarks') and prints, for every
 * call that doubled the hash table, its time, then the slowest calls of all
 * (a doubling was one O(keys) rehash inside a single set until issue 15's
 * incremental rehash; GC pauses of the script itself show up there too).
 * Then the slowest calls while the key arena sheds dead bytes: min(N, 2M)
 * keys of 60 bytes replaced one by one by 20-byte keys (their freed slots'
 * arena bytes mostly dead), then by 60-byte keys again (appended: the arena
 * is rewritten; in one call until the evacuation of issue 15), through the
 * byte methods so the script makes little garbage.
 *
 *   node dist/tools/bench/keydir-growth.js [--keys 6500000] [--dist dist]
 *
 * `--dist` loads the Keydir of another build (its `dist` directory), for an
 * A/B in the same minutes.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { hashBytes, Keydir } from '../../src/engine/keydir.js';
import { intOption, runMain, UsageError } from './lib.js';

runMain(async () => {
  let values: { keys?: string; dist?: string };
  try {
    ({ values } = parseArgs({
      options: { keys: { type: 'string', default: '6500000' }, dist: { type: 'string' } },
      strict: true,
    }));
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\nusage: keydir-growth [--keys N] [--dist DIR]`);
  }
  const keys = intOption('--keys', values.keys, 1);
  const url =
    values.dist === undefined
      ? new URL('../../src/engine/keydir.js', import.meta.url).href
      : pathToFileURL(resolve(values.dist, 'src/engine/keydir.js')).href;
  const built = (await import(url)) as { Keydir: new () => Keydir; hashBytes: typeof hashBytes };
  const KeydirClass = built.Keydir;
  const kd = new KeydirClass();
  const doublings: { keys: number; ms: number }[] = [];
  const slowest: { keys: number; ms: number }[] = [];
  let capacity = kd.capacity;
  for (let i = 0; i < keys; i++) {
    const key = `key:${String(i).padStart(12, '0')}`;
    const t0 = performance.now();
    kd.set(key, 1, i, 100, 0);
    const ms = performance.now() - t0;
    if (kd.capacity !== capacity) {
      doublings.push({ keys: i + 1, ms });
      capacity = kd.capacity;
    }
    if (slowest.length < 5 || ms > slowest[slowest.length - 1]!.ms) {
      slowest.push({ keys: i + 1, ms });
      slowest.sort((a, b) => b.ms - a.ms);
      slowest.length = Math.min(slowest.length, 5);
    }
  }
  console.log(`keydir of ${url}: ${keys.toLocaleString('en-US')} new keys`);
  console.log('set that doubled the table   ms');
  for (const d of doublings.filter((d) => d.keys >= 100_000))
    console.log(`${`at ${d.keys.toLocaleString('en-US')} keys`.padEnd(27)}${d.ms.toFixed(2).padStart(7)}`);
  console.log(
    `slowest sets: ${slowest.map((s) => `${s.ms.toFixed(1)} ms at ${s.keys.toLocaleString('en-US')}`).join(', ')}`,
  );
  arenaChurn(new KeydirClass(), built.hashBytes, Math.min(keys, 2_000_000));
});

/** Key lengths of the churn's generations; each replaces the one before, key by key. */
const CHURN_LENGTHS = [60, 20, 60];

/** The churn of long keys described on top; prints its slowest calls (a delete and a set each). */
function arenaChurn(kd: Keydir, hash: typeof hashBytes, live: number): void {
  const buf = Buffer.alloc(64, 0x2e);
  buf.write('session:', 0, 'latin1');
  const key = (i: number): void => {
    let x = i;
    for (let p = 19; p >= 8; p--) {
      buf[p] = 0x30 + (x % 10);
      x = Math.floor(x / 10);
    }
  };
  for (let i = 0; i < live; i++) {
    key(i);
    kd.setBytes(hash(buf, 0, CHURN_LENGTHS[0]!), buf, 0, CHURN_LENGTHS[0]!, 1, i, 100, 0);
  }
  while (kd.rehashFor(10)); // the fill's last doubling: not the arena's
  const slowest: number[] = [];
  for (let g = 1; g < CHURN_LENGTHS.length; g++) {
    const before = CHURN_LENGTHS[g - 1]!;
    const now = CHURN_LENGTHS[g]!;
    for (let i = 0; i < live; i++) {
      const t0 = performance.now();
      key((g - 1) * live + i);
      if (!kd.deleteBytes(hash(buf, 0, before), buf, 0, before)) throw new Error(`churn: key ${i} lost`);
      key(g * live + i);
      kd.setBytes(hash(buf, 0, now), buf, 0, now, 1, i, 100, 0);
      const ms = performance.now() - t0;
      if (slowest.length < 5 || ms > slowest[slowest.length - 1]!) {
        slowest.push(ms);
        slowest.sort((a, b) => b - a);
        slowest.length = Math.min(slowest.length, 5);
      }
    }
  }
  console.log(
    `arena churn of ${live.toLocaleString('en-US')} long keys (${CHURN_LENGTHS.join(' -> ')} bytes), slowest calls: ${slowest.map((ms) => `${ms.toFixed(1)} ms`).join(', ')}`,
  );
}
