/**
 * kv-check and kv-dump pointed at the wrong directory, or at one they may
 * not read: no false all-clear, and one line naming DIR, the path and what
 * to do, exit 2, never a stack trace. Also the summaries said once
 * (kv-check --fix) and where the log ends (kv-dump --from past it).
 * The compiled tools, as real processes.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { recordSize } from '../../src/engine/record.js';
import { built, makeData, open, REPO, run, segFiles, tempDir, useBuiltTools } from './helpers.js';

useBuiltTools();

/** Root bypasses file permissions: the permission cases then run the tool as nobody. */
const asRoot = process.getuid?.() === 0;
const unprivileged = asRoot ? { uid: 65534, gid: 65534 } : {};

/** A temporary directory every user may enter (mkdtemp makes it 0700). */
function openTempDir(): string {
  const d = tempDir();
  fs.chmodSync(d, 0o755);
  return d;
}

function expectOneLine(stderr: string, tool: string): string {
  const lines = stderr.split('\n').filter((l) => l !== '');
  expect(lines, stderr).toHaveLength(1);
  expect(lines[0]!.startsWith(`${tool}: `)).toBe(true);
  expect(stderr).not.toMatch(/\n\s+at |Error:/);
  return lines[0]!;
}

describe('a directory without segkv data is not an all-clear', () => {
  it('kv-check on an empty directory, a project directory and the parent of a data directory: exit 2', async () => {
    const empty = tempDir();
    const r = run(built.check, [empty]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stdout).not.toContain('RESULT: OK');
    expect(expectOneLine(r.stderr, 'kv-check')).toBe(
      `kv-check: no segkv data in ${empty}: it holds no segment files (*.seg). ` +
        'Give the directory kv-server uses (its --dir, default ./data).',
    );
    expect(run(built.check, [empty, '--json']).code).toBe(2);

    const project = run(built.check, [REPO]);
    expect(project.code).toBe(2);
    expect(project.stderr).toContain(`no segkv data in ${REPO}`);

    const parent = tempDir();
    const data = join(parent, 'data');
    const store = await open(data);
    await store.set('k', 'v');
    await store.close();
    const up = run(built.check, [parent]);
    expect(up.code).toBe(2);
    expect(expectOneLine(up.stderr, 'kv-check')).toContain(`${data} holds segkv data.`);
    expect(run(built.check, [data]).code).toBe(0);
  });

  it('kv-dump on an empty directory: exit 2, not "0 records"', () => {
    const empty = tempDir();
    const r = run(built.dump, [empty]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(expectOneLine(r.stderr, 'kv-dump')).toContain(`no segkv data in ${empty}`);
  });
});

describe('a directory this user may not read: one line, exit 2', () => {
  it('DIR itself', () => {
    const dir = join(openTempDir(), 'private');
    fs.mkdirSync(dir);
    fs.writeFileSync(join(dir, '00000000000000000000.seg'), '');
    fs.chmodSync(dir, asRoot ? 0o700 : 0o000);
    for (const [tool, name] of [
      [built.check, 'kv-check'],
      [built.dump, 'kv-dump'],
    ] as const) {
      const r = run(tool, [dir], '', unprivileged);
      expect(r.code, r.stderr).toBe(2);
      expect(expectOneLine(r.stderr, name)).toContain(
        `DIR ${dir}: permission denied on ${dir}; run as the user kv-server runs as`,
      );
    }
    fs.chmodSync(dir, 0o700);
  });

  it('a segment file in it', async () => {
    const { dir } = await makeData(50);
    fs.chmodSync(dir, 0o755); // its parent is the system's temporary directory, open to all
    const seg = join(dir, segFiles(dir)[0]!);
    fs.chmodSync(seg, asRoot ? 0o600 : 0o000);
    for (const [tool, name] of [
      [built.check, 'kv-check'],
      [built.dump, 'kv-dump'],
    ] as const) {
      const r = run(tool, [dir], '', unprivileged);
      expect(r.code, r.stderr).toBe(2);
      expect(expectOneLine(r.stderr, name)).toContain(`DIR ${dir}: permission denied on ${seg}`);
    }
  });

  it('an unreadable LOCK: cannot tell whether a server holds DIR, so refused unless --force-read-only', async () => {
    const { dir } = await makeData(50);
    fs.chmodSync(dir, 0o777);
    for (const f of fs.readdirSync(dir)) fs.chmodSync(join(dir, f), 0o644);
    const lock = join(dir, 'LOCK');
    fs.writeFileSync(lock, '1 2\n');
    fs.chmodSync(lock, 0o000);
    const r = run(built.check, [dir], '', unprivileged);
    expect(r.code, r.stderr).toBe(2);
    expect(expectOneLine(r.stderr, 'kv-check')).toContain(
      `DIR ${dir}: cannot read its lock file ${lock} (EACCES), so kv-check cannot tell whether a server is using it`,
    );
    const forced = run(built.check, [dir, '--force-read-only'], '', unprivileged);
    expect(forced.code, forced.stderr).toBe(0);
    const fix = run(built.check, [dir, '--fix', '--yes'], '', unprivileged);
    expect(fix.code).toBe(2);
    expectOneLine(fix.stderr, 'kv-check');
  });
});

describe('summaries said once', () => {
  it('kv-check --fix: the fix once, then one result line, not a second report', async () => {
    const { dir } = await makeData(100);
    const active = join(dir, segFiles(dir).at(-1)!);
    fs.appendFileSync(active, Buffer.alloc(recordSize(3, 10) - 5, 1));
    const r = run(built.check, [dir, '--fix', '--yes']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.match(/truncated /g)).toHaveLength(1);
    expect(r.stderr).not.toContain('truncated');
    expect(r.stdout.match(/^segments /gm)).toHaveLength(1);
    expect(r.stdout).toMatch(
      /FIXED: truncated .*\nChecked again: \d+ records, \d+ live keys, no problems\.\n\nRESULT: OK\n$/,
    );
    // --json: the JSON on stdout, the one human line on stderr.
    fs.appendFileSync(active, Buffer.alloc(7, 1));
    const json = run(built.check, [dir, '--fix', '--yes', '--json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout).fixed).toMatchObject({ bytes: 7 });
    expect(json.stderr.match(/truncated /g)).toHaveLength(1);
  });

  it('kv-dump --from past the end says where the log ends', async () => {
    const { dir } = await makeData(); // offsets 0..302
    const r = run(built.dump, [dir, '--from', '1000']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      'kv-dump: 0 records; --from 1000 is past the end of the log: its last record is offset 302\n',
    );
    const last = run(built.dump, [dir, '--from', '302']);
    expect(last.stderr).toBe('kv-dump: 1 record (offsets 302..302)\n');

    const emptyLog = tempDir();
    await (await open(emptyLog)).close();
    const none = run(built.dump, [emptyLog, '--from', '5']);
    expect(none.code).toBe(0);
    expect(none.stderr).toBe('kv-dump: 0 records; the log holds no records\n');
  });
});
