/**
 * Helpers of the kv-cli tests: build dist/ when the sources are newer (the
 * tests run the compiled CLI as a user would, against a real kv-server from
 * test/server/spawn.ts), and run kv-cli as a process, synchronously or with
 * a live stdin.
 */
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { afterAll } from 'vitest';

export const REPO = join(import.meta.dirname, '..', '..');
export const KV_CLI = join(REPO, 'dist', 'tools', 'kv-cli.js');

function newestTs(dir: string): number {
  let newest = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name.endsWith('.ts'))
      newest = Math.max(newest, fs.statSync(join(e.parentPath, e.name)).mtimeMs);
  }
  return newest;
}

function builtAt(): number {
  try {
    return fs.statSync(KV_CLI).mtimeMs;
  } catch {
    return 0;
  }
}

/**
 * Runs `tsc -p .` unless dist/tools/kv-cli.js is newer than every source it
 * and the server are built from. Shares the operator-tool tests' lock, so
 * parallel test files never build at once or spawn a half-written file.
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
    if (builtAt() < Math.max(newestTs(join(REPO, 'tools')), newestTs(join(REPO, 'src')))) {
      // Type errors elsewhere in the tree still emit JS; the existence check below is what matters.
      spawnSync('npx', ['tsc', '-p', '.'], { cwd: REPO, stdio: 'ignore' });
    }
    if (builtAt() === 0) throw new Error('npx tsc -p . did not produce dist/tools/kv-cli.js');
  } finally {
    fs.rmdirSync(lock);
  }
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout as bytes (for --raw). */
  bytes: Buffer;
}

/**
 * Whether a run never got to kv-cli's code: in a shared checkout another
 * build may be rewriting dist/ at that instant, and node then loads an empty
 * file (exit 0, no output at all; kv-cli always prints something) or a
 * module without the export it imports.
 */
function loadRace(r: CliRun): boolean {
  if (r.code === 0 && r.bytes.length === 0 && r.stderr === '') return true;
  return r.code !== 0 && /SyntaxError|ERR_MODULE_NOT_FOUND|does not provide an export/.test(r.stderr);
}

/** Runs kv-cli to completion; `input` is its stdin. Retried (it never ran) when dist/ was being rebuilt. */
export function cli(args: string[], input: string | Buffer = '', env: Record<string, string> = {}): CliRun {
  for (let attempt = 1; ; attempt++) {
    const r = spawnSync(process.execPath, [KV_CLI, ...args], {
      input,
      env: { ...process.env, SEGKV_HISTORY: '', ...env },
      timeout: 60_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    if (r.error) throw r.error;
    const run = {
      code: r.status ?? -1,
      stdout: r.stdout.toString('utf8'),
      stderr: r.stderr.toString('utf8'),
      bytes: r.stdout,
    };
    if (!loadRace(run) || attempt === 5) return run;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500);
  }
}

/** A kv-cli process with a live stdin: write lines, wait for output. */
export class LiveCli {
  readonly proc: ChildProcessWithoutNullStreams;
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;

  constructor(args: string[], env: Record<string, string> = {}) {
    this.proc = spawn(process.execPath, [KV_CLI, ...args], { env: { ...process.env, ...env } });
    live.add(this.proc);
    this.proc.stdout.on('data', (b: Buffer) => {
      this.stdout += b.toString('utf8');
    });
    this.proc.stderr.on('data', (b: Buffer) => {
      this.stderr += b.toString('utf8');
    });
    this.exited = new Promise((r) =>
      this.proc.on('exit', (code) => {
        live.delete(this.proc);
        r(code);
      }),
    );
  }

  send(line: string): void {
    this.proc.stdin.write(`${line}\n`);
  }

  end(): void {
    this.proc.stdin.end();
  }

  /** Waits until stdout matches (polling), or throws with what arrived. */
  async waitFor(pattern: RegExp | string, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const hit = () =>
      typeof pattern === 'string' ? this.stdout.includes(pattern) : pattern.test(this.stdout);
    while (!hit()) {
      if (Date.now() > deadline) {
        throw new Error(`kv-cli output never matched ${pattern}:\n${this.stdout}\nstderr:\n${this.stderr}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

const live = new Set<ChildProcessWithoutNullStreams>();
afterAll(() => {
  for (const p of live) p.kill('SIGKILL');
});

/**
 * Runs kv-cli in a pseudo-terminal (120 columns); steps are [keys to type,
 * text to wait for after the previous step's match]. Returns the transcript.
 */
export function inPty(
  args: string[],
  steps: [string, string][],
  env: Record<string, string> = {},
): { out: string; status: number | undefined } {
  const driver = `
import fcntl, json, os, pty, select, struct, sys, termios, time
steps = json.loads(sys.argv[1])
pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack('HHHH', 24, 120, 0, 0))
    os.execv(sys.argv[2], sys.argv[2:])
out = b''
pos = 0
def wait_for(text):
    global out, pos
    end = time.time() + 20
    while out.find(text.encode(), pos) < 0:
        left = end - time.time()
        if left <= 0: return False
        r, _, _ = select.select([fd], [], [], left)
        if not r: return False
        try: data = os.read(fd, 65536)
        except OSError: return False
        if not data: return False
        out += data
    pos = out.find(text.encode(), pos) + len(text.encode())
    return True
result = {'ok': True}
for keys, expect in steps:
    if keys: os.write(fd, keys.encode())
    if expect and not wait_for(expect):
        result = {'ok': False, 'missing': expect}
        break
def drain():
    # What the child wrote before it exited is still in the pty: read it until the
    # master reports the closed slave (EIO) or nothing comes.
    global out
    while True:
        r, _, _ = select.select([fd], [], [], 0.5)
        if not r: return
        try: data = os.read(fd, 65536)
        except OSError: return
        if not data: return
        out += data
end = time.time() + 10
while result['ok'] and time.time() < end:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        drain()
        result['status'] = os.waitstatus_to_exitcode(status)
        break
    r, _, _ = select.select([fd], [], [], 0.05)
    if r:
        try: out += os.read(fd, 65536)
        except OSError: pass
if 'status' not in result:
    try: os.kill(pid, 9)
    except OSError: pass
result['out'] = out.decode('utf8', 'replace')
print(json.dumps(result))
`;
  const r = spawnSync('python3', ['-c', driver, JSON.stringify(steps), process.execPath, KV_CLI, ...args], {
    encoding: 'utf8',
    env: { ...process.env, TERM: 'xterm', ...env },
    timeout: 50_000,
  });
  if (r.error) throw r.error;
  const result = JSON.parse(r.stdout) as { ok: boolean; missing?: string; out: string; status?: number };
  if (!result.ok)
    throw new Error(`never saw ${JSON.stringify(result.missing)} in:\n${JSON.stringify(result.out)}`);
  return { out: result.out, status: result.status };
}
