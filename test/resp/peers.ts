/**
 * Test helper: the real Redis tools the RESP tests compare against or drive
 * (redis-server, redis-cli, redis-benchmark from Debian's redis-server and
 * redis-tools; redis-py from python3-redis; ioredis from devDependencies).
 *
 * A missing tool skips its test with one line naming the Debian package:
 *   SKIPPED (missing tool): redis-server — apt-get install redis-server
 * Under CI (CI=true, as .ci/run sets) a missing tool fails the test instead,
 * so CI cannot pass with the comparison silently off.
 *
 * startRedis() runs a throwaway redis-server on a free 127.0.0.1 port with
 * no persistence (`--save '' --appendonly no`); it is killed when the test
 * file ends.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

const live = new Set<ChildProcess>();
const dirs = new Set<string>();
afterAll(() => {
  for (const p of live) p.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** The Debian package of each tool the RESP tests use. */
const PACKAGES = {
  'redis-server': 'redis-server',
  'redis-cli': 'redis-tools',
  'redis-benchmark': 'redis-tools',
  'python3-redis': 'python3-redis',
} as const;
export type Tool = keyof typeof PACKAGES;

const found = new Map<Tool, boolean>();

/** The python with Debian's redis module (a pyenv python on PATH may lack it). */
export const PYTHON = ['/usr/bin/python3', 'python3'].find(
  (py) => spawnSync(py, ['-c', 'import redis'], { stdio: 'ignore' }).status === 0,
);

function present(tool: Tool): boolean {
  if (tool === 'python3-redis') return PYTHON !== undefined;
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * True if every tool is installed. Otherwise prints the SKIPPED line and
 * returns false, or under CI=true throws.
 */
export function haveTools(...tools: Tool[]): boolean {
  for (const tool of tools) {
    let ok = found.get(tool);
    if (ok === undefined) {
      ok = present(tool);
      found.set(tool, ok);
    }
    if (!ok) {
      const line = `SKIPPED (missing tool): ${tool} — apt-get install ${PACKAGES[tool]}`;
      if (process.env.CI === 'true') throw new Error(`${line} (CI=true: a missing tool is a failure)`);
      console.log(line);
      return false;
    }
  }
  return true;
}

/** A port nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export interface RedisPeer {
  port: number;
  stop(): void;
}

/** Starts redis-server on a free port; resolves once it accepts connections. */
export async function startRedis(extra: string[] = []): Promise<RedisPeer> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    // Its own directory: BGREWRITEAOF writes appendonlydir/ even with appendonly off.
    const dir = mkdtempSync(join(tmpdir(), 'segkv-redis-peer-'));
    dirs.add(dir);
    const proc = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--save',
        '',
        '--appendonly',
        'no',
        ...extra,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir },
    );
    live.add(proc);
    let output = '';
    proc.stdout?.on('data', (d: Buffer) => {
      output += d.toString();
    });
    const started = Date.now();
    while (Date.now() - started < 10_000) {
      if (proc.exitCode !== null) break;
      if (await accepts(port)) {
        return {
          port,
          stop: () => {
            proc.kill('SIGKILL');
            live.delete(proc);
          },
        };
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    proc.kill('SIGKILL');
    live.delete(proc);
    if (attempt >= 3) throw new Error(`redis-server did not start on port ${port}:\n${output}`);
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.connect(port, '127.0.0.1');
  });
}
