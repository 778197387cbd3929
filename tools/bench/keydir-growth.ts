/**
 * How long the keydir's longest calls take while it grows: fills one Keydir
 * with N new keys (16-byte keys, as the benchmarks') and prints, for every
 * call that doubled the hash table, its time, then the slowest calls of all
 * (a doubling was one O(keys) rehash inside a single set until issue 15's
 * incremental rehash; GC pauses of the script itself show up there too).
 *
 *   node dist/tools/bench/keydir-growth.js [--keys 6500000] [--dist dist]
 *
 * `--dist` loads the Keydir of another build (its `dist` directory), for an
 * A/B in the same minutes.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { Keydir } from '../../src/engine/keydir.js';
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
  const { Keydir: KeydirClass } = (await import(url)) as { Keydir: new () => Keydir };
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
});
