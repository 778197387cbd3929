/**
 * redis-benchmark (Debian's redis-tools), a load generator segkv did not
 * write, runs against kv-server: every test completes (it exits non-zero on
 * an error reply or a reply it cannot parse), pipelined and not, and the
 * keys it wrote read back through redis-cli.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ServerProcess, spawnServer } from '../server/spawn.js';
import { haveTools } from './peers.js';

const TESTS = ['PING_INLINE', 'PING_MBULK', 'SET', 'GET', 'INCR', 'MSET (10 keys)'];

function bench(port: number, ...args: string[]): Map<string, number> {
  const out = execFileSync(
    'redis-benchmark',
    ['-p', String(port), '-n', '2000', '-c', '4', '-t', 'ping,set,get,incr,mset', '--csv', ...args],
    { encoding: 'utf8', timeout: 60_000 },
  );
  const rps = new Map<string, number>();
  for (const line of out.trim().split('\n').slice(1)) {
    const [name, value] = line.split(',').map((f) => f.replace(/"/g, ''));
    rps.set(name!, Number(value));
  }
  return rps;
}

describe.runIf(haveTools('redis-benchmark', 'redis-cli'))('redis-benchmark against kv-server', () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await spawnServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  for (const pipeline of ['1', '16']) {
    it(`every test completes (-P ${pipeline})`, () => {
      const rps = bench(server.port, '-P', pipeline);
      expect([...rps.keys()]).toEqual(TESTS);
      for (const [name, value] of rps) expect(value, name).toBeGreaterThan(0);
    });
  }

  it('what it wrote reads back', () => {
    const cli = (...a: string[]) =>
      execFileSync('redis-cli', ['-p', String(server.port), ...a], { encoding: 'utf8' }).trim();
    // -t set writes "key:__rand_int__" (no -r), -t incr "counter:__rand_int__".
    expect(cli('get', 'key:__rand_int__')).toBe('VXK');
    expect(Number(cli('get', 'counter:__rand_int__'))).toBeGreaterThanOrEqual(4000);
  });
});
