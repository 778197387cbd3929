/**
 * The crash loop of `npm run torture` (tools/torture.ts), short: a few
 * SIGKILL cycles in each durability mode must end with 0 violations, and the
 * checker must not be vacuous — with `--sabotage` (after each kill, up to
 * 4000 bytes are cut off the newest segment, losing acknowledged writes) it
 * must report violations and exit 1. The long runs are the npm scripts.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from '../engine/helpers.js';
import { buildServer, cleanup } from './server-build.js';

let torture: string;

beforeAll(() => {
  const main = buildServer(['tools/torture.ts']);
  torture = join(main, '..', '..', '..', 'tools', 'torture.js');
}, 60_000);

afterAll(cleanup);

function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [torture, ...args], {
    cwd: REPO,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('torture (short)', () => {
  it('4 SIGKILL cycles in always and interval: 0 violations, exit 0', () => {
    const r = run(['--cycles', '4', '--seed', '42']);
    expect(r.status, `${r.stdout}\n${r.stderr.slice(-2000)}`).toBe(0);
    expect(r.stdout).toMatch(/\| always +\| 4 +\| 3 +\|.*\| 0 +\| 0 +\|/);
    expect(r.stdout).toMatch(/\| interval +\| 4 +\| 3 +\|.*\| 0 +\| 0 +\|/);
  }, 60_000);

  it('with --sabotage the lost acknowledged writes are reported and it exits 1', () => {
    const r = run(['--cycles', '6', '--modes', 'always', '--sabotage', '--seed', '3']);
    expect(r.status, r.stdout).toBe(1);
    expect(r.stdout).toMatch(/^VIOLATION always cycle \d+: \S+ (lost acknowledged|holds)/m);
  }, 60_000);
});
