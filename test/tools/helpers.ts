/**
 * Helpers of the operator-tool tests: compile the tools, run them as real
 * processes (`node <build>/tools/kv-check.js ...`, as an operator runs
 * dist/tools/kv-check.js), and make real data directories with the engine.
 *
 * The tools are compiled into a private directory per test process, with
 * the options of tsconfig.json: other work in the same checkout (and other
 * test files) rebuilds dist/ at any moment, and a child loading a
 * half-written dist/ file fails for reasons unrelated to the tools.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { afterAll, beforeAll } from 'vitest';
import { openStore, type Store, type StoreOptions } from '../../src/engine/index.js';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Paths of the compiled tools and engine; set by buildTools(). */
export const built = { check: '', dump: '', engine: '', out: '' };

/** Compiles tools/kv-check.ts, tools/kv-dump.ts and the engine (for the lock holder) into a private directory. */
export function buildTools(): void {
  const out = join(REPO, 'node_modules', '.cache', 'segkv-tools-tests', String(process.pid));
  fs.rmSync(out, { recursive: true, force: true });
  const roots = ['tools/kv-check.ts', 'tools/kv-dump.ts', 'src/engine/index.ts'].map((f) => join(REPO, f));
  const args = ['tsc', ...roots];
  args.push('--ignoreConfig', '--outDir', out, '--rootDir', REPO);
  args.push('--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--target', 'ES2022');
  args.push('--skipLibCheck', '--types', 'node', '--strict');
  // Type errors elsewhere in the tree still emit JavaScript; whether the tools run is what the tests decide.
  spawnSync('npx', args, { cwd: REPO, stdio: 'ignore' });
  built.out = out;
  built.check = join(out, 'tools', 'kv-check.js');
  built.dump = join(out, 'tools', 'kv-dump.js');
  built.engine = join(out, 'src', 'engine', 'index.js');
  for (const f of [built.check, built.dump, built.engine]) {
    if (!fs.existsSync(f)) throw new Error(`compiling the tools into ${out} produced no ${f}`);
  }
}

export function removeBuild(): void {
  if (built.out) fs.rmSync(built.out, { recursive: true, force: true });
}

/** The hooks of a tool test file: compile the tools before its tests; remove the build and the temporary directories after. */
export function useBuiltTools(): void {
  beforeAll(buildTools);
  afterAll(() => {
    removeTempDirs();
    removeBuild();
  });
}

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a compiled tool with `node`, as an operator would; `input` is fed to its stdin.
 * `as`: spawn options such as another uid (the permission tests run as nobody when we are root).
 */
export function run(tool: string, args: string[], input = '', as: { uid?: number; gid?: number } = {}): Run {
  const r = spawnSync(process.execPath, [tool, ...args], { input, encoding: 'utf8', timeout: 60_000, ...as });
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
  // Records get their offsets (and segments) when set() is called: no need to wait for each ack.
  const acks: Promise<boolean>[] = [];
  for (let i = 0; i < n; i++) {
    const k = `k${i % keys}`;
    acks.push(store.set(k, `value-${i}`));
    model.set(k, `value-${i}`);
  }
  await Promise.all(acks);
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
  const engine = built.engine;
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
