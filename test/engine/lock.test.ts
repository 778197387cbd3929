/**
 * One process owns a data directory (DESIGN.md §1.5): a second open, in the
 * same process or another one, fails at once with LOCKED and a message naming
 * the owner; the failed attempt leaves the owner's lock alone; a LOCK left by a
 * dead process (SIGKILL), by a reused pid, or half written is taken over.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, type StoreOptions } from '../../src/engine/index.js';
import { KvError } from '../../src/errors.js';
import { until } from './compaction/util.js';
import {
  buildEngine,
  FIXTURES,
  REPO,
  removeEngineBuilds,
  removeTempDirs,
  silentLogger,
  tempDir,
} from './helpers.js';

const opts: StoreOptions = { logger: silentLogger, compaction: { auto: false } };
let engine: string;

beforeAll(() => {
  engine = buildEngine();
});
afterAll(() => {
  removeTempDirs();
  removeEngineBuilds();
});

const childEnv = () => ({ ...process.env, SEGKV_ENGINE: engine });

/** Runs `open-store.mjs DIR try` to completion. */
function tryOpenInChild(dir: string): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [join(FIXTURES, 'open-store.mjs'), dir, 'try'], {
    cwd: REPO,
    env: childEnv(),
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { status: r.status, out: r.stdout.trim() };
}

/** Starts `open-store.mjs DIR hold` and resolves once it has the store open. */
function holdInChild(dir: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(FIXTURES, 'open-store.mjs'), dir, 'hold'], {
      cwd: REPO,
      env: childEnv(),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (d: string) => {
      out += d;
      if (out.includes('OPEN\n')) resolve(child);
      else if (out.includes('\n')) reject(new Error(`the child could not open: ${out}`));
    });
    child.on('error', reject);
  });
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

/** The pid of a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '']);
  expect(r.status).toBe(0);
  return r.pid!;
}

async function openError(dir: string): Promise<KvError> {
  try {
    const s = await openStore(dir, opts);
    await s.close();
  } catch (err) {
    return err as KvError;
  }
  throw new Error('the second open succeeded');
}

describe('a second open in the same process', () => {
  it('fails with LOCKED, also through another spelling of the path, and works after close', async () => {
    const dir = tempDir();
    const first = await openStore(dir, opts);
    await first.set('k', 'v');
    for (const spelling of [dir, `${dir}/`, `${dir}/./`]) {
      const err = await openError(spelling);
      expect(err).toBeInstanceOf(KvError);
      expect(err.code).toBe('LOCKED');
      expect(err.message).toContain('already open in this process');
    }
    // The failed attempts did not break the first store or its lock.
    expect(first.getSync('k')?.toString()).toBe('v');
    expect(fs.readFileSync(join(dir, 'LOCK'), 'utf8')).toContain(`${process.pid} `);
    await first.close();
    expect(fs.existsSync(join(dir, 'LOCK'))).toBe(false);
    const again = await openStore(dir, opts);
    expect(again.getSync('k')?.toString()).toBe('v');
    await again.close();
  });
});

describe('a second process', () => {
  it('fails at once with a clear LOCKED error while this process has the directory open', async () => {
    const dir = tempDir();
    const s = await openStore(dir, opts);
    const t0 = Date.now();
    const r = tryOpenInChild(dir);
    expect(r.status).toBe(2);
    const err = JSON.parse(r.out) as { code: string; message: string };
    expect(err.code).toBe('LOCKED');
    expect(err.message).toContain(`in use by process ${process.pid}`);
    expect(Date.now() - t0).toBeLessThan(10_000);
    // The refused child left our lock in place.
    expect(fs.readFileSync(join(dir, 'LOCK'), 'utf8').startsWith(`${process.pid} `)).toBe(true);
    await s.close();
    expect(tryOpenInChild(dir)).toEqual({ status: 0, out: 'OPEN' });
  });

  it('is refused here while it holds the directory, and its lock is taken over once it is SIGKILLed', async () => {
    const dir = tempDir();
    const child = await holdInChild(dir);
    try {
      const err = await openError(dir);
      expect(err.code).toBe('LOCKED');
      expect(err.message).toContain(`in use by process ${child.pid}`);
    } finally {
      child.kill('SIGKILL');
      await exited(child);
    }
    expect(fs.readFileSync(join(dir, 'LOCK'), 'utf8').startsWith(`${child.pid} `)).toBe(true);
    const s = await openStore(dir, opts);
    expect(fs.readFileSync(join(dir, 'LOCK'), 'utf8').startsWith(`${process.pid} `)).toBe(true);
    await s.close();
  });
});

describe('stale locks', () => {
  const cases: { name: string; content: () => string }[] = [
    { name: 'the pid of a dead process', content: () => `${deadPid()} 12345\n` },
    { name: 'a dead pid without a start time', content: () => `${deadPid()}\n` },
    { name: 'a live pid with another start time (pid reuse)', content: () => `${process.pid} 1\n` },
    { name: 'an empty file (crash while writing it)', content: () => '' },
    { name: 'garbage', content: () => 'not a pid at all' },
    // Power loss tears an unsynced LOCK: "1" left of "1234 5678\n" names init, which is alive.
    { name: 'a torn pid that names a live process (pid 1, no newline)', content: () => '1' },
    { name: 'a torn line naming this live process (no newline)', content: () => `${process.pid} 1` },
  ];
  for (const c of cases) {
    it(`takes over a LOCK holding ${c.name}`, async () => {
      const dir = tempDir();
      fs.writeFileSync(join(dir, 'LOCK'), c.content());
      const s = await openStore(dir, opts);
      expect(fs.readFileSync(join(dir, 'LOCK'), 'utf8').startsWith(`${process.pid} `)).toBe(true);
      await s.close();
      expect(fs.existsSync(join(dir, 'LOCK'))).toBe(false);
    });
  }

  it('takes over the LOCK of a zombie: a SIGKILLed owner its parent has not reaped yet', async () => {
    const dir = tempDir();
    // A parent that forks a child which exits at once, and does not wait for it for 30 s.
    const parent = spawn('python3', [
      '-c',
      'import os, sys, time\npid = os.fork()\nif pid == 0: os._exit(0)\nprint(pid, flush=True)\ntime.sleep(30)',
    ]);
    try {
      const zombie = Number(
        await new Promise<string>((r) => parent.stdout.once('data', (d) => r(String(d)))),
      );
      const stat = () => fs.readFileSync(`/proc/${zombie}/stat`, 'latin1');
      await until(() => /\) Z /.test(stat()), 10_000, 'the child to be a zombie');
      const start = stat()
        .slice(stat().lastIndexOf(')') + 2)
        .split(' ')[19];
      // Its lock names it exactly (pid and start time), and kill(pid, 0) still succeeds on it.
      fs.writeFileSync(join(dir, 'LOCK'), `${zombie} ${start}\n`);
      expect(() => process.kill(zombie, 0)).not.toThrow();
      const s = await openStore(dir, opts);
      expect(fs.readFileSync(join(dir, 'LOCK'), 'utf8').startsWith(`${process.pid} `)).toBe(true);
      await s.close();
    } finally {
      parent.kill('SIGKILL');
      await exited(parent);
    }
  });

  it('does not take over the LOCK of a live process', async () => {
    const dir = tempDir();
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
    try {
      fs.writeFileSync(join(dir, 'LOCK'), `${child.pid}\n`);
      const err = await openError(dir);
      expect(err.code).toBe('LOCKED');
      expect(fs.readFileSync(join(dir, 'LOCK'), 'utf8')).toBe(`${child.pid}\n`);
    } finally {
      child.kill('SIGKILL');
      await exited(child);
    }
  });
});
