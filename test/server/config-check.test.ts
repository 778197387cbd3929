/**
 * kv-server refuses what it does not know: misspelt `--compaction-*` flags,
 * unknown `SEGKV_*` variables and bad compaction values stop it at parse
 * time with exit 2 and one line naming the flag or variable (and the closest
 * known name), before anything is created; run as real processes.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONFIG_ENV, envName, parseConfig, SETTINGS } from '../../src/server/config.js';
import {
  COMPACTION_KEYS,
  closest,
  compactionEnv,
  OTHER_PROGRAMS_ENV,
} from '../../src/server/config-check.js';
import { MAIN, tempDir } from './spawn.js';

const REPO = join(import.meta.dirname, '..', '..');

/** The test runner's environment without any SEGKV_* variable of its own. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SEGKV_')));
  return { ...env, ...extra };
}

function server(args: string[], env: Record<string, string> = {}) {
  const dir = join(tempDir(), 'data');
  const r = spawnSync(process.execPath, [MAIN, '--dir', dir, '--port', '0', ...args], {
    encoding: 'utf8',
    env: cleanEnv(env),
    timeout: 10_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, dirCreated: existsSync(dir) };
}

describe('kv-server refuses unknown names and bad compaction values', () => {
  it('a misspelt --compaction-* flag: exit 2, one line naming it and the closest flag, nothing created', () => {
    const r = server(['--compaction-min-dead-ration', '0.3']);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(
      'kv-server: unknown option --compaction-min-dead-ration. Did you mean --compaction-min-dead-ratio? ' +
        'See kv-server --help for the --compaction-* flags\n',
    );
    expect(r.dirCreated).toBe(false);
    const foo = server(['--compaction-foo=1']);
    expect(foo.status).toBe(2);
    expect(foo.stderr).toMatch(/^kv-server: unknown option --compaction-foo\. See kv-server --help/);
  });

  it("a value the engine refuses is named by the operator's flag, not the store option's name", () => {
    const r = server(['--max-segment-bytes', '10']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(
      'kv-server: bad setting: --max-segment-bytes must be an integer from 1024 to 4294967295, got 10; see kv-server --help\n',
    );
    expect(r.stderr).not.toContain('maxSegmentBytes');
  });

  it('a misspelt SEGKV_COMPACTION_* or any unknown SEGKV_* variable: exit 2, naming it', () => {
    const ratio = server([], { SEGKV_COMPACTION_MIN_DEAD_RATION: '0.3' });
    expect(ratio.status).toBe(2);
    expect(ratio.stderr).toContain(
      'unknown environment variable SEGKV_COMPACTION_MIN_DEAD_RATION. Did you mean SEGKV_COMPACTION_MIN_DEAD_RATIO?',
    );
    expect(ratio.dirCreated).toBe(false);
    const port = server([], { SEGKV_PROT: '7000' });
    expect(port.status).toBe(2);
    expect(port.stderr).toContain('unknown environment variable SEGKV_PROT. Did you mean SEGKV_PORT?');
    // An unknown flag gets its suggestion too.
    const flag = server(['--max-client', '5']);
    expect(flag.status).toBe(2);
    expect(flag.stderr).toContain("Unknown option '--max-client'. Did you mean --max-clients?");
  });

  it('compaction values are checked at parse time: --print-config with a bad one exits 2 naming it', () => {
    const cases: [string[], Record<string, string>, string][] = [
      [['--compaction-min-dead-ratio', 'abc'], {}, "--compaction-min-dead-ratio must be a number, got 'abc'"],
      [['--compaction-min-dead-ratio=0'], {}, '--compaction-min-dead-ratio must be in (0, 1], got 0'],
      [['--compaction-auto', 'maybe'], {}, "--compaction-auto must be true or false, got 'maybe'"],
      [['--compaction-cpu-share', '0'], {}, '--compaction-cpu-share must be in (0, 1], got 0'],
      [['--compaction-cpu-share=1.5'], {}, '--compaction-cpu-share must be in (0, 1], got 1.5'],
      [[], { SEGKV_COMPACTION_CPU_SHARE: 'half' }, "SEGKV_COMPACTION_CPU_SHARE must be a number, got 'half'"],
      [
        ['--compaction-check-interval-ms', '5'],
        {},
        '--compaction-check-interval-ms must be an integer from 10 to 86400000, got 5',
      ],
      [
        [],
        { SEGKV_COMPACTION_MIN_DEAD_RATIO: 'abc' },
        "SEGKV_COMPACTION_MIN_DEAD_RATIO must be a number, got 'abc'",
      ],
    ];
    for (const [args, env, message] of cases) {
      const r = server([...args, '--print-config'], env);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe(`kv-server: ${message}\n`);
    }
  });

  it("good compaction values reach --print-config typed; other segkv programs' variables are left alone", () => {
    const r = server(
      [
        '--compaction-min-dead-ratio',
        '0.25',
        '--compaction-auto=false',
        '--compaction-cpu-share',
        '0.5',
        '--print-config',
      ],
      {
        SEGKV_COMPACTION_MIN_DEAD_BYTES: '1024',
        SEGKV_CLI_AUTH: 'kv-cli password',
        SEGKV_HISTORY: '',
      },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).compaction).toMatchObject({
      minDeadRatio: 0.25,
      auto: false,
      minDeadBytes: 1024,
      cpuShare: 0.5,
    });
  });

  it('kv-server --version prints the package version and exits 0', () => {
    const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };
    const r = server(['--version']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`kv-server ${pkg.version}\n`);
    expect(parseConfig(['--version'], {})).toBe('version');
    // As redis-server: -v and -h too.
    expect(server(['-v']).stdout).toBe(`kv-server ${pkg.version}\n`);
    expect(parseConfig(['-h'], {})).toBe('help');
  });

  it('suggestions are for typos, not for any name', () => {
    expect(closest('--prot', ['--port', '--host'])).toBe('--port');
    expect(closest('SEGKV_COMPACTION_FOO', COMPACTION_KEYS.map(compactionEnv))).toBeUndefined();
    expect(closest('--compaction-min-intrval-ms', ['--compaction-min-interval-ms'])).toBe(
      '--compaction-min-interval-ms',
    );
  });
});

describe('the SEGKV_* namespace', () => {
  /** Files that mention SEGKV_ names on purpose as unknown ones. */
  const DELIBERATELY_UNKNOWN = new Set(['test/server/config-check.test.ts', 'test/server/config.test.ts']);

  function* sources(dir: string): Generator<string> {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, e.name);
      if (e.isDirectory()) yield* sources(path);
      else if (/\.(ts|mjs|js|md|json|sh)$/.test(e.name)) yield path;
    }
  }

  it('every SEGKV_* variable named in the repository is read by kv-server or belongs to another segkv program', () => {
    const known = new Set([
      ...SETTINGS.map((s) => envName(s.flag)),
      ...COMPACTION_KEYS.map(compactionEnv),
      CONFIG_ENV,
      ...Object.keys(OTHER_PROGRAMS_ENV),
    ]);
    const unknown: string[] = [];
    const roots = ['src', 'tools', 'test', 'examples', 'protocol'].map((d) => join(REPO, d));
    const files = [...roots.filter(existsSync).flatMap((r) => [...sources(r)]), join(REPO, 'README.md')];
    for (const file of files) {
      const rel = relative(REPO, file);
      if (DELIBERATELY_UNKNOWN.has(rel)) continue;
      // A name, not a prefix such as `SEGKV_COMPACTION_<NAME>` or `SEGKV_*`.
      for (const m of readFileSync(file, 'utf8').matchAll(/\bSEGKV_[A-Z0-9_]*[A-Z0-9]\b(?![_<*])/g)) {
        if (!known.has(m[0])) unknown.push(`${rel}: ${m[0]}`);
      }
    }
    expect(
      unknown,
      'kv-server refuses SEGKV_* variables it does not know: add a new one to OTHER_PROGRAMS_ENV (src/server/config-check.ts)',
    ).toEqual([]);
  });
});
