/**
 * kv-server for the reliability tests that need a real process: compiled from
 * src/ into a private directory (node_modules/.cache/segkv-reliability-tests/
 * <pid>-<random>), as test/engine/helpers.ts buildEngine() does for the engine, so a
 * teammate's `tsc` rewriting dist/ at the same moment cannot break the child.
 * Node resolves pino and msgpackr from the repository's node_modules above it.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { REPO } from '../engine/helpers.js';

const builds: string[] = [];
const live = new Set<ChildProcess>();

/**
 * Compiles kv-server (and what it imports), plus `extra` entry files given
 * relative to the repository (e.g. 'tools/torture.ts', found afterwards at
 * `<out>/tools/torture.js`, i.e. join(main, '../../../tools/torture.js'));
 * returns the path of kv-server's main.js.
 */
export function buildServer(extra: string[] = []): string {
  // pid plus a random suffix: test files may share a process (worker threads).
  const out = join(
    REPO,
    'node_modules',
    '.cache',
    'segkv-reliability-tests',
    `${process.pid}-${randomUUID().slice(0, 8)}`,
  );
  builds.push(out);
  const args = ['tsc', join(REPO, 'src', 'server', 'main.ts'), ...extra.map((e) => join(REPO, e))];
  args.push('--ignoreConfig', '--outDir', out);
  args.push('--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--target', 'ES2022');
  args.push('--skipLibCheck', '--types', 'node', '--rootDir', REPO);
  try {
    execFileSync('npx', args, { cwd: REPO, stdio: 'pipe' });
  } catch {
    // Type errors still emit JavaScript; whether it runs is what matters here.
  }
  const main = join(out, 'src', 'server', 'main.js');
  if (!fs.existsSync(main)) throw new Error(`compiling kv-server into ${out} produced no ${main}`);
  return main;
}

export function cleanup(): void {
  for (const p of live) p.kill('SIGKILL');
  live.clear();
  for (const d of builds.splice(0)) fs.rmSync(d, { recursive: true, force: true });
}

export interface Started {
  proc: ChildProcess;
  port: number;
  stderr: () => string;
  stop: () => Promise<void>;
}

/** Starts kv-server on `dir` (port 0); resolves once it listens, rejects with its stderr if it exits first. */
export function startServer(main: string, dir: string, extra: string[] = []): Promise<Started> {
  const args = [main, '--dir', dir, '--host', '127.0.0.1', '--port', '0', '--log-level', 'info', ...extra];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  live.add(proc);
  let err = '';
  const exited = new Promise<void>((res) =>
    proc.on('exit', () => {
      live.delete(proc);
      res();
    }),
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`kv-server did not listen in 15 s:\n${err}`));
    }, 15_000);
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (d: string) => {
      err += d;
      const m = /"port":(\d+)[^\n]*"msg":"listening"/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve({
          proc,
          port: Number(m[1]),
          stderr: () => err,
          stop: async () => {
            if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
            await exited;
          },
        });
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`kv-server exited with ${code} before listening:\n${err}`));
    });
  });
}
