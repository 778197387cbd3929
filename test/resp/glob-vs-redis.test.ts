/**
 * The glob matcher (src/engine/glob.ts) against redis-server's own KEYS:
 * random patterns over an alphabet of glob metacharacters, the same keys on
 * both sides, the same answer required.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { globMatch } from '../../src/engine/glob.js';
import { haveTools, type RedisPeer, startRedis } from './peers.js';
import { RawResp } from './raw.js';

const ALPHABET = ['a', 'b', 'c', ':', '*', '?', '[', ']', '-', '^', '\\', '\u00e9'];
const piece = fc.constantFrom(...ALPHABET);
const word = (max: number) => fc.array(piece, { minLength: 1, maxLength: max }).map((a) => a.join(''));

/** Keys in the engine's internal form: the latin1 string of their UTF-8 bytes. */
const internal = (s: string) => Buffer.from(s, 'utf8').toString('latin1');

describe.runIf(haveTools('redis-server'))('glob matching agrees with redis-server KEYS', () => {
  let redis: RedisPeer;
  let conn: RawResp;
  const keys = fc.sample(word(6), { numRuns: 120, seed: 7 });
  keys.push('a', 'ab', 'a:1', 'b:1', 'a*b', ']', '-', '\\', '[a]');

  beforeAll(async () => {
    redis = await startRedis();
    conn = await RawResp.connect(redis.port);
    for (const k of new Set(keys)) await conn.call('SET', k, '1');
  });
  afterAll(() => {
    conn?.close();
    redis?.stop();
  });

  it('every random pattern selects the same keys', async () => {
    const distinct = [...new Set(keys)];
    await fc.assert(
      fc.asyncProperty(word(7), async (pattern) => {
        const reply = await conn.call('KEYS', pattern);
        const theirs = (reply.value as string[]).map(internal).sort();
        const ours = distinct
          .map(internal)
          .filter((k) => globMatch(internal(pattern), k))
          .sort();
        expect(ours, `pattern ${JSON.stringify(pattern)}`).toEqual(theirs);
      }),
      { numRuns: 400, seed: 42 },
    );
  });
});
