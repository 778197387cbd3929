/**
 * The crash loop of `npm run torture` (tools/torture.ts), short: a few
 * SIGKILL cycles in each durability mode must end with 0 violations, and the
 * checker must not be vacuous — with `--sabotage` (after each kill the end of
 * the log is cut off, always taking the harness's last acknowledged write, its
 * witness: tools/lib/sabotage.ts) it must report each witness lost and exit 1. The long runs are the npm scripts.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../engine/compaction/util.js';
import { REPO } from '../engine/helpers.js';
import { buildServer, cleanup } from './server-build.js';

// hostile.js reads protocol/PROTOCOL.md beside its build at load, so it cannot run from this private
// build; its command line goes through the same parseOptionsStrictly and runHarness.
const HARNESSES = ['torture', 'torture-cluster', 'torture-replication'];
let tools: string;
let torture: string;

beforeAll(() => {
  const main = buildServer(HARNESSES.map((h) => `tools/${h}.ts`));
  tools = join(main, '..', '..', '..', 'tools');
  torture = join(tools, 'torture.js');
}, 60_000);

afterAll(cleanup);

function run(args: string[], script = torture): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [script, ...args], {
    cwd: REPO,
    encoding: 'utf8',
    // A loaded machine (CI beside other work) slows every cycle: 60 s was once not enough.
    timeout: 110_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('torture (short)', () => {
  it('4 SIGKILL cycles in always and interval: 0 violations, exit 0', () => {
    const r = run(['--cycles', '4', '--seed', '42']);
    expect(r.status, `${r.stdout}\n${r.stderr.slice(-2000)}`).toBe(0);
    expect(r.stdout).toMatch(/\| always +\| 4 +\| 3 +\|.*\| 0 +\| 0 +\|/);
    expect(r.stdout).toMatch(/\| interval +\| 4 +\| 3 +\|.*\| 0 +\| 0 +\|/);
  }, 120_000);

  it('with --sabotage every cut takes its witness, the checker reports each, and it exits 1', () => {
    // Cycles stop after 40 s (one sabotaged cycle is enough to report), however slow the machine.
    // Seed 3 drew a kill right after a COMPACT in cycle 0, whose cut used to take nothing.
    const r = run(['--cycles', '6', '--modes', 'always', '--sabotage', '--seed', '3', '--max-seconds', '40']);
    const out = `${r.stdout}\n${r.stderr.slice(-2000)}`;
    expect(r.status, out).toBe(1);
    const cuts = [...r.stdout.matchAll(/^SABOTAGE always cycle (\d+): cut .*$/gm)];
    expect(cuts.length, out).toBeGreaterThan(0);
    for (const [line, cycle] of cuts) {
      // The witness (the cycle's last write, acknowledged) was cut off, and the next restart's check reported it.
      expect(line).toMatch(/\(\d+ records, [1-9]\d* of them the latest acknowledged write of their key\)/);
      const witness = new RegExp(
        `the witness (w\\d/k0)=(c${cycle}\\.witness); reported: always cycle ${Number(cycle) + 1}: \\1 (lost acknowledged|holds \\S+, acknowledged) \\2$`,
      );
      expect(line).toMatch(witness);
    }
    expect(r.stdout).toContain(
      `always: sabotage: ${cuts.length} cuts, witness reported after ${cuts.length}\n`,
    );
    // Nothing was in flight at a sabotaged kill, so every record cut off had been acknowledged.
    expect(r.stdout).toMatch(/^\| always .*\| 0 \/ 0 +\|/m);
  }, 120_000);

  it('a harness stopped by SIGTERM (a test timeout, Ctrl-C) takes its kv-servers with it', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'segkv-harness-'));
    try {
      // Its data directories (and so its servers' command lines) are under `tmp`.
      const harness = spawn(process.execPath, [torture, '--cycles', '100', '--modes', 'always'], {
        env: { ...process.env, TMPDIR: tmp },
        stdio: 'ignore',
      });
      const gone = new Promise((resolve) => harness.once('exit', resolve));
      await until(() => serversUnder(tmp).length > 0, 30_000, 'a server of the harness');
      harness.kill('SIGTERM');
      await gone;
      await until(() => serversUnder(tmp).length === 0, 5_000, 'its servers to be gone');
    } finally {
      for (const pid of serversUnder(tmp)) process.kill(pid, 'SIGKILL');
      rmSync(tmp, { recursive: true, force: true });
    }
  }, 60_000);

  it('every harness refuses a bad command line in one line with exit 2, before starting anything', () => {
    // `--cycles abc` used to run 0 cycles of torture and print "promise checked".
    const bad: [string, string[], RegExp][] = [
      ['torture', ['--cycles', 'abc'], /^torture: --cycles must be an integer ≥ 1, got abc$/],
      [
        'torture',
        ['--modes', 'sometimes'],
        /^torture: --modes takes always and\/or interval, got sometimes$/,
      ],
      ['torture', ['--max-seconds', '1.5'], /^torture: --max-seconds must be an integer ≥ 1, got 1.5$/],
      [
        'torture-cluster',
        ['--lease-ms', 'x'],
        /^torture:cluster: --lease-ms must be an integer ≥ 1000, got x$/,
      ],
      ['torture-replication', ['extra'], /^torture:replication: Unexpected argument 'extra'$/],
    ];
    for (const [harness, args, line] of bad) {
      const r = run(args, join(tools, `${harness}.js`));
      expect(r.status, `${harness} ${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stdout).toBe('');
      const lines = r.stderr.trimEnd().split('\n');
      expect(lines[0]).toMatch(line);
      expect(lines.slice(1)).toEqual([`Run \`npm run ${harness.replace('-', ':')} -- --help\` for usage.`]);
    }
  });
});

/** Pids of the processes whose command line names a path under `dir`. */
function serversUnder(dir: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(dir)) pids.push(Number(name));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}
