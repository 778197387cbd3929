/**
 * kv-cli against what a new user runs into: a port that is not segkv (an
 * HTTP server, a silent one, one answering RESP) fails fast with "not a
 * segkv server"; Ctrl-D, or Ctrl-C on an empty line, leaves the prompt with
 * status 0 (a real pseudo-terminal, and piped stdin); `expire k -5` deletes
 * as Redis does; SET's and EXPIRE's bad times share one error code; glob
 * patterns in KEYS, SCAN MATCH and --scan --pattern. Real processes and
 * sockets on 127.0.0.1.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { haveTools, startRedis } from '../resp/peers.js';
import { type ServerProcess, spawnServer } from '../server/spawn.js';
import { cli, ensureBuilt, inPty, KV_CLI } from './helpers.js';

let server: ServerProcess;
let p: string[];
const peers: Server[] = [];
const ports: Record<'silent' | 'http' | 'resp', number> = { silent: 0, http: 0, resp: 0 };

async function listen(s: Server): Promise<number> {
  peers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return (s.address() as { port: number }).port;
}

beforeAll(async () => {
  ensureBuilt();
  server = await spawnServer();
  p = ['-p', String(server.port)];
  ports.silent = await listen(createServer((s) => s.on('error', () => {})));
  ports.http = await listen(createHttpServer((_q, r) => r.end('hi')) as unknown as Server);
  ports.resp = await listen(
    createServer((s) => {
      s.on('error', () => {});
      s.once('data', () => s.write('-ERR unknown command\r\n'));
    }),
  );
});
afterAll(async () => {
  for (const s of peers) s.close();
  await server.stop();
});

/** Runs kv-cli asynchronously (the peers live in this process): exit code, output, time taken. */
function run(
  args: string[],
  input = '',
): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const t0 = Date.now();
  const child = spawn(process.execPath, [KV_CLI, ...args], { env: { ...process.env, SEGKV_HISTORY: '' } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => {
    stdout += b.toString();
  });
  child.stderr.on('data', (b: Buffer) => {
    stderr += b.toString();
  });
  child.stdin.end(input);
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  return new Promise((resolve) =>
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - t0 });
    }),
  );
}

describe('a port that is not segkv', () => {
  for (const [kind, pattern] of [
    ['http', /it is not a segkv server: it is an HTTP server \(it answered "HTTP\/1\.1 400 Bad Request"\)/],
    ['silent', /it is not a segkv server: it sent no reply to HELLO within 1000 ms/],
    ['resp', /it is not a segkv server: it answers in RESP, as Redis does/],
  ] as const) {
    it(`${kind}: one command fails within a couple of seconds, exit 1`, async () => {
      const r = await run(['-p', String(ports[kind]), 'ping']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`^Could not connect to segkv at 127\\.0\\.0\\.1:${ports[kind]}: `));
      expect(r.stderr).toMatch(pattern);
      expect(r.ms).toBeLessThan(5000); // ~1 s for the silent one, plus node's start on a busy machine
    });
  }

  it.runIf(haveTools('redis-server'))(
    'a real redis-server: "not a segkv server" within about a second',
    async () => {
      const redis = await startRedis();
      try {
        const r = await run(['-p', String(redis.port), 'ping']);
        expect(r.code).toBe(1);
        expect(r.stderr).toMatch(
          /it is not a segkv server: it sent no reply to HELLO within 1000 ms \(a Redis server/,
        );
        expect(r.ms).toBeLessThan(5000);
      } finally {
        redis.stop();
      }
    },
  );

  it('the prompt on piped stdin says so too, and ends with the input, status 0', async () => {
    const r = await run(['-p', String(ports.http)], 'get x\n');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/it is not a segkv server: it is an HTTP server/);
  });
});

const hasPty = spawnSync('python3', ['-c', 'import pty'], { stdio: 'ignore' }).status === 0;

describe.skipIf(!hasPty)('leaving the prompt at "not connected>"', () => {
  // inPty runs python synchronously: the peers must live in another process.
  let peer: ReturnType<typeof spawn>;
  let silentPort = 0;
  beforeAll(async () => {
    peer = spawn(process.execPath, [
      '-e',
      "const s = require('node:net').createServer((c) => c.on('error', () => {})); s.listen(0, '127.0.0.1', () => console.log(s.address().port));",
    ]);
    silentPort = await new Promise<number>((r) =>
      peer.stdout!.once('data', (b: Buffer) => r(Number(String(b).trim()))),
    );
  });
  afterAll(() => peer.kill('SIGKILL'));

  for (const [key, name] of [
    ['\x04', 'Ctrl-D'],
    ['\x03', 'Ctrl-C on an empty line'],
  ] as const) {
    it(`${name} exits 0, against a port nothing listens on and one that is not segkv`, () => {
      for (const port of ['1', String(silentPort)]) {
        const { out, status } = inPty(
          ['-p', port],
          [
            ['', 'not connected> '],
            [key, ''],
          ],
        );
        expect(out).toContain('Could not connect to segkv at 127.0.0.1:');
        expect(status, `port ${port}: ${JSON.stringify(out)}`).toBe(0);
      }
    });
  }

  it('Ctrl-C while a command waits for the lost server abandons it; a second one on the empty line exits 0', () => {
    const { status } = inPty(
      ['-p', String(silentPort)],
      [
        ['', 'not connected> '],
        ['get x\r', ''],
        ['\x03', '(interrupted)'],
        ['\x03', ''],
      ],
    );
    expect(status).toBe(0);
  });
});

describe('Redis units and error codes', () => {
  it('expire k -5 deletes the key and answers 1 (not -5000 ms)', () => {
    expect(cli([...p, 'set', 'neg', 'v']).stdout).toBe('OK\n');
    const r = cli([...p, 'expire', 'neg', '-5']);
    expect(r).toMatchObject({ code: 0, stdout: '(integer) 1\n' });
    expect(cli([...p, 'exists', 'neg']).stdout).toBe('(integer) 0\n');
    expect(cli([...p, 'expire', 'neg', '0']).stdout).toBe('(integer) 0\n');
    expect(cli([...p, 'set', 'neg', 'v']).stdout).toBe('OK\n');
    expect(cli([...p, 'pexpire', 'neg', '0']).stdout).toBe('(integer) 1\n');
  });

  it('ttl answers seconds and pttl milliseconds', () => {
    cli([...p, 'set', 'units', 'v', 'ex', '100']);
    expect(cli([...p, 'ttl', 'units']).stdout).toMatch(/^\(integer\) (9\d|100)\n$/); // seconds, rounded
    const ms = Number(/\(integer\) (\d+)/.exec(cli([...p, 'pttl', 'units']).stdout)?.[1]);
    expect(ms).toBeGreaterThan(90_000);
    expect(ms).toBeLessThanOrEqual(100_000);
  });

  it('a time that is not an integer is WRONG_ARGS in SET and EXPIRE; a SET time ≤ 0 is INVALID_ARGUMENT, as the server says', () => {
    expect(cli([...p, 'set', 'c', 'v', 'ex', 'soon']).stderr).toMatch(/^\(error\) WRONG_ARGS /);
    expect(cli([...p, 'expire', 'c', 'soon']).stderr).toMatch(/^\(error\) WRONG_ARGS /);
    expect(cli([...p, 'set', 'c', 'v', 'ex', '0']).stderr).toMatch(
      /^\(error\) INVALID_ARGUMENT SET: invalid expire time 0/,
    );
    expect(cli([...p, 'set', 'c', 'v', 'px', '-1']).stderr).toMatch(/^\(error\) INVALID_ARGUMENT /);
  });
});

describe('glob patterns', () => {
  it("KEYS, SCAN MATCH and --scan --pattern take Redis's globs: '*:1', '?', '[ab]'", () => {
    cli([...p, 'mset', 'user:1', 'a', 'user:2', 'b', 'order:1', 'c', 'user:10', 'd']);
    const sorted = (text: string) => text.trim().split('\n').sort();
    expect(sorted(cli([...p, '--scan', '--pattern', '*:1']).stdout)).toEqual(['order:1', 'user:1']);
    expect(sorted(cli([...p, '--raw', 'keys', 'user:?']).stdout)).toEqual(['user:1', 'user:2']);
    expect(sorted(cli([...p, '--raw', 'keys', '[ou]*:1*']).stdout)).toEqual(['order:1', 'user:1', 'user:10']);
    const page = cli([...p, 'scan', '0', 'match', '*:1', 'count', '1000']);
    expect(page.stdout).toContain('"order:1"');
    expect(page.stdout).not.toContain('"user:2"');
  });
});
