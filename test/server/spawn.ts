/**
 * Test helper: runs a real kv-server process (dist/src/server/main.js) on
 * 127.0.0.1 with `--port 0` and a temporary data directory, and learns its
 * port from the 'listening' log line. Every spawned server is killed when
 * the test file ends.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll } from 'vitest';

export const MAIN = resolve(import.meta.dirname, '../../dist/src/server/main.js');

export interface ServerProcess {
  proc: ChildProcess;
  port: number;
  dir: string;
  args: string[];
  /** Everything the server wrote on stderr so far. */
  stderr(): string;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

const live = new Set<ChildProcess>();
const dirs = new Set<string>();

afterAll(() => {
  for (const p of live) p.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

export function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'segkv-test-'));
  dirs.add(d);
  return d;
}

export interface SpawnOptions {
  args?: string[];
  env?: Record<string, string>;
  /** Data directory; default a fresh temporary one. */
  dir?: string;
  /** Port to bind; default 0 (any free port). */
  port?: number;
}

/**
 * Starts a server. Retries (a few times) only when the process could not even
 * load its modules — exit 0 without a word, or a SyntaxError about imports:
 * another build rewriting dist/ at that instant in a shared checkout.
 */
export async function spawnServer(options: SpawnOptions = {}): Promise<ServerProcess> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await spawnOnce(options);
    } catch (err) {
      const m = (err as Error).message;
      const torn = m.startsWith('server exited with 0 before listening:\n\n') || m.includes('SyntaxError');
      if (!torn || attempt >= 4) throw err;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

function spawnOnce(options: SpawnOptions): Promise<ServerProcess> {
  const dir = options.dir ?? tempDir();
  const args = [
    MAIN,
    '--dir',
    dir,
    '--host',
    '127.0.0.1',
    '--port',
    String(options.port ?? 0),
    '--log-level',
    'info',
    ...(options.args ?? []),
  ];
  const proc = spawn(process.execPath, args, {
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  live.add(proc);
  let err = '';
  const exited = new Promise<number | null>((res) =>
    proc.on('exit', (code) => {
      live.delete(proc);
      res(code);
    }),
  );
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not listen in time:\n${err}`)), 15_000);
    proc.stderr!.on('data', (chunk: Buffer) => {
      err += chunk.toString();
      const m = /"port":(\d+)[^\n]*"msg":"listening"/.exec(err);
      if (m && timer) {
        clearTimeout(timer);
        resolvePromise({
          proc,
          port: Number(m[1]),
          dir,
          args,
          stderr: () => err,
          stop: (signal = 'SIGTERM') => {
            if (proc.exitCode !== null || proc.signalCode !== null) return exited;
            proc.kill(signal);
            return exited;
          },
        });
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening:\n\n${err}`));
    });
  });
}

export { RawConnection } from '../../tools/lib/raw-connection.js';
