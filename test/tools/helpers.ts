/**
 * Helpers of the operator-tool tests: build the tools once (dist/ must match
 * the sources, since the tests spawn the compiled CLIs as an operator would),
 * run them as real processes, and make real data directories with the engine.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { openStore, type Store, type StoreOptions } from '../../src/engine/index.js';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const KV_CHECK = join(REPO, 'dist', 'tools', 'kv-check.js');
export const KV_DUMP = join(REPO, 'dist', 'tools', 'kv-dump.js');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name.endsWith('.ts')) {
      newest = Math.max(newest, fs.statSync(join(e.parentPath, e.name)).mtimeMs);
    }
  }
  return newest;
}

function builtMtime(): number {
  try {
    return Math.min(fs.statSync(KV_CHECK).mtimeMs, fs.statSync(KV_DUMP).mtimeMs);
  } catch {
    return 0;
  }
}

/**
 * Runs `tsc -p .` unless dist/ is newer than every source of the tools and the
 * engine. Test files run in parallel forks: a lock directory makes one build
 * while the others wait, so no test spawns a half-written file.
 */
export function ensureBuilt(): void {
  const lock = join(REPO, 'dist', '.tools-build.lock');
  fs.mkdirSync(join(REPO, 'dist'), { recursive: true });
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      fs.mkdirSync(lock);
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`${lock} held for 2 minutes; remove it if no test runs`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
    }
  }
  try {
    const sources = Math.max(newestMtime(join(REPO, 'tools')), newestMtime(join(REPO, 'src')));
    if (builtMtime() < sources) {
      // Type errors elsewhere in the tree still emit JS; the existence check below is what matters.
      spawnSync('npx', ['tsc', '-p', '.'], { cwd: REPO, stdio: 'ignore' });
    }
    if (builtMtime() === 0) throw new Error('npx tsc -p . did not produce dist/tools/kv-check.js');
  } finally {
    fs.rmdirSync(lock);
  }
}

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a compiled tool with `node`, as an operator would; `input` is fed to its stdin. */
export function run(tool: string, args: string[], input = ''): Run {
  const r = spawnSync(process.execPath, [tool, ...args], { input, encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw r.error;
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export function runJson<T>(tool: string, args: string[]): { code: number; json: T; stderr: string } {
  const r = run(tool, [...args, '--json']);
  return { code: r.code, json: JSON.parse(r.stdout) as T, stderr: r.stderr };
}

const dirs: string[] = [];

export function tempDir(): string {
  const d = fs.mkdtempSync(join(os.tmpdir(), 'segkv-tools-'));
  dirs.push(d);
  return d;
}

export function removeTempDirs(): void {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
}

export const silent = pino({ level: 'silent' });

/** Opens a store with tiny segments, no automatic compaction and a silent logger. */
export function open(dir: string, options: StoreOptions = {}): Promise<Store> {
  return openStore(dir, {
    maxSegmentBytes: 1024,
    logger: silent,
    compaction: { auto: false },
    ...options,
  });
}

/**
 * A directory of `n` SETs over `keys` keys (value `value-<i>` at offset i),
 * then a DEL of key k1 and a 2-record batch: spans many 1 KiB segments.
 * Returns the expected latest value of every key.
 */
export async function makeData(n = 300, keys = 50): Promise<{ dir: string; model: Map<string, string> }> {
  const dir = tempDir();
  const store = await open(dir);
  const model = new Map<string, string>();
  for (let i = 0; i < n; i++) {
    const k = `k${i % keys}`;
    await store.set(k, `value-${i}`);
    model.set(k, `value-${i}`);
  }
  await store.delete('k1');
  model.delete('k1');
  await store.batch([
    { type: 'set', key: 'a', value: '1' },
    { type: 'set', key: 'b', value: '2' },
  ]);
  model.set('a', '1');
  model.set('b', '2');
  await store.close();
  return { dir, model };
}

export function segFiles(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((n) => n.endsWith('.seg'))
    .sort();
}

export function flipBit(path: string, position: number, bit = 0): void {
  const buf = fs.readFileSync(path);
  buf[position] = buf[position]! ^ (1 << bit);
  fs.writeFileSync(path, buf);
}

/** Spawns a process that opens `dir` with the compiled engine and holds it until killed. */
export async function holdDir(dir: string): Promise<{ pid: number; stop: () => Promise<void> }> {
  const engine = join(REPO, 'dist', 'src', 'engine', 'index.js');
  const code =
    `const { openStore } = await import(${JSON.stringify(engine)});` +
    `await openStore(${JSON.stringify(dir)}, { maxSegmentBytes: 1024, compaction: { auto: false } });` +
    `process.stdout.write('ready\\n'); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (c) => reject(new Error(`the holder exited with ${c}`)));
    child.stdout.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) resolve();
    });
  });
  child.removeAllListeners('exit');
  return {
    pid: child.pid!,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}
