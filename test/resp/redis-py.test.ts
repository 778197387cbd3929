/**
 * redis-py (Debian's python3-redis) runs test/resp/py/scenario.py against
 * kv-server and against a real redis-server; both must print the same
 * results and the same errors, step for step.
 */
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ServerProcess, spawnServer } from '../server/spawn.js';
import { haveTools, PYTHON, type RedisPeer, startRedis } from './peers.js';

const SCRIPT = resolve(import.meta.dirname, 'py/scenario.py');

function run(port: number, password?: string): unknown[] {
  const out = execFileSync(PYTHON!, [SCRIPT, String(port), ...(password ? [password] : [])], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  return JSON.parse(out) as unknown[];
}

describe.runIf(haveTools('python3-redis', 'redis-server'))(
  'redis-py against kv-server and redis-server',
  () => {
    let segkv: ServerProcess;
    let secured: ServerProcess;
    let redis: RedisPeer;
    let securedRedis: RedisPeer;

    beforeAll(async () => {
      [segkv, secured, redis, securedRedis] = await Promise.all([
        spawnServer(),
        spawnServer({ env: { SEGKV_PASSWORD: 'sekret' } }),
        startRedis(['--databases', '1']),
        startRedis(['--databases', '1', '--requirepass', 'sekret']),
      ]);
    });
    afterAll(async () => {
      redis?.stop();
      securedRedis?.stop();
      await Promise.all([segkv?.stop(), secured?.stop()]);
    });

    it('the same results and errors, step for step', () => {
      const ours = run(segkv.port);
      const theirs = run(redis.port);
      expect(ours.length).toBeGreaterThan(50);
      for (let i = 0; i < theirs.length; i++) expect(ours[i], `step ${i}`).toEqual(theirs[i]);
      expect(ours).toEqual(theirs);
    });

    it('with a password (AUTH at connect)', () => {
      expect(run(secured.port, 'sekret')).toEqual(run(securedRedis.port, 'sekret'));
    });
  },
);
