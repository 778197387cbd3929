/**
 * kv-server's setup problems, as an operator meets them: a port in use, a
 * --dir that is a file, a directory this user may not write, a LOCK that
 * cannot be opened. Each is one line on stderr naming the flag, the path or
 * address and the fix, exit 2, no stack trace and no JSON log line; a port
 * in use is found before the data directory is created. Real processes.
 */
import { type SpawnSyncOptions, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { connect } from '../../src/index.js';
import { MAIN, spawnServer, tempDir } from './spawn.js';

/** Runs as root in CI containers: the permission cases then run the server as `nobody`. */
const asRoot = process.getuid?.() === 0;
const NOBODY = 65534;

function serverSync(args: string[], options: SpawnSyncOptions = {}) {
  const r = spawnSync(process.execPath, [MAIN, '--log-level', 'info', ...args], {
    encoding: 'utf8',
    timeout: 15_000,
    ...options,
  });
  return { status: r.status, stderr: String(r.stderr), stdout: String(r.stdout) };
}

/** A temporary directory every user may enter (mkdtemp makes it 0700). */
function openTempDir(): string {
  const d = tempDir();
  chmodSync(d, 0o755);
  return d;
}

/** The server is run as a user who may not write `path` (nobody when we are root). */
function unprivileged(): SpawnSyncOptions {
  return asRoot ? { uid: NOBODY, gid: NOBODY } : {};
}

/** One line, `kv-server: ...`, and nothing that looks like a stack trace or a log object. */
function expectOneLine(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l !== '');
  expect(lines, stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^kv-server: /);
  expect(stderr).not.toMatch(/\n\s+at |"level"|Error:/);
  return lines[0]!;
}

const holders: Server[] = [];
afterAll(() => {
  for (const h of holders) h.close();
});

async function holdPort(): Promise<number> {
  const h = createServer();
  holders.push(h);
  await new Promise<void>((r) => h.listen(0, '127.0.0.1', r));
  return (h.address() as { port: number }).port;
}

describe('kv-server setup problems: one line, exit 2', () => {
  it('a port in use is reported before the data directory is created', async () => {
    const port = await holdPort();
    const dir = join(tempDir(), 'not-yet');
    const r = serverSync(['--dir', dir, '--host', '127.0.0.1', '--port', String(port)]);
    expect(r.status).toBe(2);
    expect(expectOneLine(r.stderr)).toBe(
      `kv-server: --port ${port}: 127.0.0.1:${port} is already in use by another process; stop it, or choose another --port`,
    );
    expect(existsSync(dir)).toBe(false);
  });

  it('a metrics port in use too', async () => {
    const port = await holdPort();
    const dir = join(tempDir(), 'not-yet');
    const r = serverSync(['--dir', dir, '--port', '0', '--metrics-port', String(port)]);
    expect(r.status).toBe(2);
    expect(expectOneLine(r.stderr)).toContain(`--metrics-port ${port}: 127.0.0.1:${port} is already in use`);
    expect(existsSync(dir)).toBe(false);
  });

  it('a --host this machine does not have is reported before the data directory is created', () => {
    const dir = join(tempDir(), 'not-yet');
    // 192.0.2.0/24 is TEST-NET-1: documentation only, never a local address.
    const r = serverSync(['--dir', dir, '--host', '192.0.2.1', '--port', '0']);
    expect(r.status).toBe(2);
    expect(expectOneLine(r.stderr)).toBe(
      'kv-server: --host 192.0.2.1: no network interface of this machine has that address; give one it has (127.0.0.1, 0.0.0.0 for all)',
    );
    expect(existsSync(dir)).toBe(false);
  });

  it('the probe lets the port go: a free fixed port is served after recovery', async () => {
    const port = await holdPort();
    holders.pop()!.close();
    await new Promise((r) => setTimeout(r, 50));
    const s = await spawnServer({ port });
    try {
      expect(s.port).toBe(port);
      const c = await connect({ port, reconnect: false });
      c.on('error', () => {});
      expect(await c.ping()).toBe('PONG');
      await c.close();
    } finally {
      await s.stop();
    }
  });

  it('--dir naming a file', () => {
    const file = join(tempDir(), 'a-file');
    writeFileSync(file, 'x');
    const r = serverSync(['--dir', file, '--port', '0']);
    expect(r.status).toBe(2);
    expect(expectOneLine(r.stderr)).toBe(
      `kv-server: --dir ${file} is a file, not a directory; give a directory (it is created if missing)`,
    );
  });

  it('--dir under a file (ENOTDIR)', () => {
    const file = join(tempDir(), 'a-file');
    writeFileSync(file, 'x');
    const r = serverSync(['--dir', join(file, 'data'), '--port', '0']);
    expect(r.status).toBe(2);
    expect(expectOneLine(r.stderr)).toMatch(/--dir .*a-file\/data: .* is not a directory/);
  });

  it('a data directory this user may not write (EACCES)', () => {
    const dir = join(openTempDir(), 'private');
    mkdirSync(dir);
    chmodSync(dir, asRoot ? 0o700 : 0o500);
    const r = serverSync(['--dir', dir, '--port', '0'], unprivileged());
    chmodSync(dir, 0o700);
    expect(r.status, r.stderr).toBe(2);
    const line = expectOneLine(r.stderr);
    expect(line).toContain(`--dir ${dir}: permission denied on ${dir}`);
    expect(line).toContain('chown/chmod');
  });

  it('a segment file this user may not write', () => {
    const dir = join(openTempDir(), 'data');
    mkdirSync(dir, { mode: 0o777 });
    chmodSync(dir, 0o777);
    const seg = join(dir, '00000000000000000000.seg');
    writeFileSync(seg, '');
    chmodSync(seg, asRoot ? 0o644 : 0o444);
    const r = serverSync(['--dir', dir, '--port', '0'], unprivileged());
    expect(r.status, r.stderr).toBe(2);
    expect(expectOneLine(r.stderr)).toContain(`--dir ${dir}: permission denied on ${seg}`);
  });

  it('a data directory that cannot be created (EACCES on its parent)', () => {
    const parent = join(openTempDir(), 'locked-parent');
    mkdirSync(parent);
    chmodSync(parent, 0o555);
    const dir = join(parent, 'data');
    const r = serverSync(['--dir', dir, '--port', '0'], unprivileged());
    chmodSync(parent, 0o755);
    expect(r.status, r.stderr).toBe(2);
    expect(expectOneLine(r.stderr)).toContain(`--dir ${dir}: permission denied`);
  });

  it('a LOCK that cannot be opened: unreadable, or a directory', () => {
    const dir = tempDir();
    chmodSync(dir, 0o777);
    const lock = join(dir, 'LOCK');
    writeFileSync(lock, '1 2\n');
    chmodSync(lock, 0o000);
    if (asRoot) chownSync(lock, 0, 0);
    const r = serverSync(['--dir', dir, '--port', '0'], unprivileged());
    expect(r.status, r.stderr).toBe(2);
    expect(expectOneLine(r.stderr)).toContain(`--dir ${dir}: cannot open its lock file ${lock} (EACCES)`);
    const dir2 = tempDir();
    mkdirSync(join(dir2, 'LOCK'));
    const r2 = serverSync(['--dir', dir2, '--port', '0']);
    expect(r2.status).toBe(2);
    expect(expectOneLine(r2.stderr)).toBe(
      `kv-server: --dir ${dir2}: ${join(dir2, 'LOCK')} is not a lock file (a directory); remove it`,
    );
  });
});
