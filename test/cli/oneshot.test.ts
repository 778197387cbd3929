/**
 * `kv-cli [opts] CMD ARGS` against a real kv-server: DESIGN.md §6's output
 * (OK, the value, (nil), (integer) N, numbered lists), --raw and --json,
 * errors on stderr with a non-zero exit, an unreachable server, a password,
 * -x, help, compact and --latency-samples.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { KvClient } from '../../src/index.js';
import { type ServerProcess, spawnServer, tempDir } from '../server/spawn.js';
import { cli, ensureBuilt } from './helpers.js';

let server: ServerProcess;
let p: string[];

beforeAll(async () => {
  ensureBuilt();
  server = await spawnServer();
  p = ['-p', String(server.port)];
});

describe('one-shot commands', () => {
  it('set, get, del, mget print what redis-cli prints', () => {
    expect(cli([...p, 'set', 'k', 'hello world'])).toMatchObject({ code: 0, stdout: 'OK\n', stderr: '' });
    expect(cli([...p, 'get', 'k']).stdout).toBe('"hello world"\n');
    expect(cli([...p, 'GET', 'missing']).stdout).toBe('(nil)\n');
    expect(cli([...p, 'mset', 'a', '1', 'b', 'x\ny'])).toMatchObject({ code: 0, stdout: 'OK\n' });
    expect(cli([...p, 'mget', 'a', 'nope', 'b']).stdout).toBe('1) "1"\n2) (nil)\n3) "x\\ny"\n');
    expect(cli([...p, 'exists', 'a', 'b', 'nope']).stdout).toBe('(integer) 2\n');
    expect(cli([...p, 'del', 'k', 'nope']).stdout).toBe('(integer) 1\n');
    expect(cli([...p, 'get', 'k']).stdout).toBe('(nil)\n');
  });

  it('takes option words after the command as arguments (set k -1), and SET options', () => {
    expect(cli([...p, 'set', 'neg', '-1']).stdout).toBe('OK\n');
    expect(cli([...p, 'incrby', 'neg', '-4']).stdout).toBe('(integer) -5\n');
    expect(cli([...p, 'set', 'neg', 'x', 'NX']).stdout).toBe('(nil)\n');
    expect(cli([...p, 'set', 'ttl', 'x', 'px', '60000']).stdout).toBe('OK\n');
    const ttl = Number(/\(integer\) (\d+)/.exec(cli([...p, 'pttl', 'ttl']).stdout)?.[1]);
    expect(ttl).toBeGreaterThan(50_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
    // TTL in seconds, rounded as Redis rounds.
    expect(cli([...p, 'ttl', 'ttl']).stdout).toMatch(/^\(integer\) (5\d|60)\n$/);
  });

  it('EXPIRE takes seconds and PEXPIRE milliseconds, as in redis-cli; PERSIST and PTTL', () => {
    cli([...p, 'set', 'exp', 'v']);
    expect(cli([...p, 'expire', 'exp', '100']).stdout).toBe('(integer) 1\n');
    const ttl = Number(/\(integer\) (\d+)/.exec(cli([...p, 'pttl', 'exp']).stdout)?.[1]);
    expect(ttl).toBeGreaterThan(90_000);
    expect(ttl).toBeLessThanOrEqual(100_000);
    // 50 s, not 5: under load a kv-cli process took over a second to start, and a 5 s key read back as 3.
    expect(cli([...p, 'pexpire', 'exp', '50000']).stdout).toBe('(integer) 1\n');
    expect(cli([...p, 'ttl', 'exp']).stdout).toMatch(/^\(integer\) (4\d|50)\n$/);
    expect(cli([...p, 'persist', 'exp']).stdout).toBe('(integer) 1\n');
    expect(cli([...p, 'ttl', 'exp']).stdout).toBe('(integer) -1\n');
    expect(cli([...p, 'persist', 'exp']).stdout).toBe('(integer) 0\n');
    expect(cli([...p, 'expire', 'exp-missing', '10']).stdout).toBe('(integer) 0\n');
    expect(cli([...p, 'expire', 'exp', 'soon']).stderr).toMatch(
      /^\(error\) WRONG_ARGS EXPIRE: seconds must be an integer/,
    );
  });

  it('--raw prints bare values for scripts, --json one JSON value', () => {
    cli([...p, 'set', 'bin', 'x']);
    expect(cli(['--raw', ...p, 'get', 'a']).stdout).toBe('1\n');
    expect(cli(['--raw', ...p, 'get', 'nope']).stdout).toBe('\n');
    expect(cli(['--raw', ...p, 'mget', 'a', 'nope', 'b']).stdout).toBe('1\n\nx\ny\n');
    expect(cli(['--raw', ...p, 'exists', 'a']).stdout).toBe('1\n');
    expect(JSON.parse(cli(['--json', ...p, 'mget', 'a', 'nope']).stdout)).toEqual(['1', null]);
    expect(JSON.parse(cli(['--json', ...p, 'set', 'j', 'v']).stdout)).toBe('OK');
    expect(JSON.parse(cli(['--json', ...p, 'dbsize']).stdout)).toBeTypeOf('number');
    const info = JSON.parse(cli(['--json', ...p, 'info', 'keyspace']).stdout) as {
      keyspace: { keys: number };
    };
    expect(info.keyspace.keys).toBeGreaterThan(0);
    const scan = JSON.parse(cli(['--json', ...p, 'scan', 'match', 'a*']).stdout);
    expect(scan).toEqual({ cursor: null, keys: ['a'] });
  });

  it('reads the last argument from stdin with -x, bytes as they are', () => {
    const blob = Buffer.from([0x00, 0xff, 0x0a, 0x41]);
    expect(cli([...p, '-x', 'set', 'blob'], blob).stdout).toBe('OK\n');
    expect(cli(['--raw', ...p, 'get', 'blob']).bytes).toEqual(Buffer.concat([blob, Buffer.from('\n')]));
    expect(cli([...p, 'get', 'blob']).stdout).toBe('"\\x00\\xff\\nA"\n');
    expect(JSON.parse(cli(['--json', ...p, 'get', 'blob']).stdout)).toEqual({
      base64: blob.toString('base64'),
    });
  });

  it('scan pages with a cursor; info prints sections', () => {
    for (let i = 0; i < 3; i++) cli([...p, 'set', `page:${i}`, 'v']);
    const first = cli([...p, 'scan', '0', 'prefix', 'page:', 'count', '2']).stdout;
    // A cursor other than "0" (more to come); cursors are random and may hold a 0 anywhere.
    expect(first).toMatch(/^1\) "(?!0")[^"]+"\n2\) 1\) "page:0"\n {3}2\) "page:1"\n$/);
    const cursor = /^1\) "([^"]+)"/.exec(first)![1]!;
    expect(cli([...p, 'scan', cursor, 'prefix', 'page:']).stdout).toBe('1) "0"\n2) 1) "page:2"\n');
    expect(cli([...p, 'info', 'server']).stdout).toMatch(/^# Server\nname:segkv\n/);
  });
});

describe('redis-cli habits: -r, --scan, KEYS', () => {
  it('-r N repeats the command', () => {
    expect(cli([...p, '-r', '3', 'incr', 'repeat']).stdout).toBe('(integer) 1\n(integer) 2\n(integer) 3\n');
  });

  it('--scan lists every key (all pages), --pattern and KEYS by prefix', () => {
    for (let i = 0; i < 5; i++) cli([...p, 'set', `listed:${i}`, 'v']);
    expect(cli([...p, '--scan', '--pattern', 'listed:*']).stdout).toBe(
      'listed:0\nlisted:1\nlisted:2\nlisted:3\nlisted:4\n',
    );
    expect(cli([...p, 'keys', 'listed:*']).stdout).toBe(
      '1) "listed:0"\n2) "listed:1"\n3) "listed:2"\n4) "listed:3"\n5) "listed:4"\n',
    );
    const all = cli([...p, '--scan'])
      .stdout.trimEnd()
      .split('\n');
    expect(all.length).toBe(Number(/\d+/.exec(cli([...p, 'dbsize']).stdout)![0]));
  });
});

describe('keys that are not UTF-8', () => {
  it('--scan prints their bytes, KEYS and SCAN show \\x escapes, --json gives base64', async () => {
    const kv = new KvClient({ port: server.port });
    const keys = [Buffer.from('rawkey:\xff', 'latin1'), Buffer.from('rawkey:\x00\x80', 'latin1')];
    try {
      for (const k of keys) await kv.set(k, 'v');
    } finally {
      await kv.close();
    }
    const sorted = [...keys].sort(Buffer.compare);
    expect(cli([...p, '--scan', '--pattern', 'rawkey:*']).bytes).toEqual(
      Buffer.concat(sorted.flatMap((k) => [k, Buffer.from('\n')])),
    );
    expect(cli([...p, 'keys', 'rawkey:*']).stdout).toBe('1) "rawkey:\\x00\\x80"\n2) "rawkey:\\xff"\n');
    expect(cli([...p, 'scan', '0', 'match', 'rawkey:*']).stdout).toBe(
      '1) "0"\n2) 1) "rawkey:\\x00\\x80"\n   2) "rawkey:\\xff"\n',
    );
    expect(
      JSON.parse(cli(['--json', ...p, '--scan', '--pattern', 'rawkey:*']).stdout.split('\n')[1]!),
    ).toEqual({
      base64: sorted[1]!.toString('base64'),
    });
    // Quoted as the prompt quotes them ("\\xff" is the byte), they are addressed back.
    expect(cli([...p, '--pipe'], 'DEL "rawkey:\\xff"\n').stdout).toMatch(
      /^sent: 1, replies: 1, errors: 0 \(/,
    );
    expect(cli([...p, 'keys', 'rawkey:*']).stdout).toBe('1) "rawkey:\\x00\\x80"\n');
  });
});

describe('errors', () => {
  it('error replies go to stderr as (error) CODE message, exit 1', () => {
    const r = cli([...p, 'incr', 'a', 'notanumber']);
    expect(r).toMatchObject({ code: 1, stdout: '' });
    expect(r.stderr).toMatch(/^\(error\) WRONG_ARGS INCR: the increment must be an integer/);
    cli([...p, 'set', 'text', 'abc']);
    expect(cli([...p, 'incr', 'text']).stderr).toMatch(/^\(error\) INVALID_VALUE /);
    expect(cli([...p, 'nosuch', 'x']).stderr).toBe(
      "(error) UNKNOWN_COMMAND unknown command 'nosuch'; type help for the list\n",
    );
    expect(cli([...p, 'get']).stderr).toBe(
      '(error) WRONG_ARGS wrong number of arguments for GET; usage: GET key\n',
    );
    // MATCH is a glob with Redis's rules, not only 'prefix*'.
    expect(cli([...p, 'scan', 'match', 'a*b']).code).toBe(0);
  });

  it('an unreachable server: redis-cli words, exit 1', () => {
    const r = cli(['-p', '1', 'ping']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^Could not connect to segkv at 127\.0\.0\.1:1: connect ECONNREFUSED/);
  });

  it('usage errors exit 2', () => {
    const r = cli(['--bogus']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Run `kv-cli --help` for usage/);
    expect(cli(['--help']).stdout).toMatch(/^Usage: kv-cli/);
  });
});

describe('a server with a password', () => {
  it('-a authenticates (with the redis-cli warning), the env variable too; a wrong one fails', async () => {
    const secured = await spawnServer({ args: ['--password', 's3cret'] });
    const sp = ['-p', String(secured.port)];
    const withFlag = cli([...sp, '-a', 's3cret', 'set', 'k', 'v']);
    expect(withFlag).toMatchObject({ code: 0, stdout: 'OK\n' });
    expect(withFlag.stderr).toMatch(/^Warning: Using a password with '-a'/);
    expect(cli([...sp, '--no-auth-warning', '-a', 's3cret', 'get', 'k'])).toMatchObject({
      stdout: '"v"\n',
      stderr: '',
    });
    expect(cli([...sp, 'get', 'k'], '', { SEGKV_CLI_AUTH: 's3cret' }).stdout).toBe('"v"\n');
    expect(cli([...sp, 'get', 'k']).stderr).toMatch(/^\(error\) NOAUTH /);
    const wrong = cli([...sp, '--no-auth-warning', '-a', 'nope', 'get', 'k']);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/AUTH_FAILED/);
    await secured.stop();
  });
});

const hasOpenssl = spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0;

describe.skipIf(!hasOpenssl)('a TLS server', () => {
  it('--tls --cacert verifies it; without the CA the connection is refused; --insecure skips the check', async () => {
    const dir = tempDir();
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1'].concat([
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=IP:127.0.0.1,DNS:localhost',
      ]),
      { stdio: 'ignore' },
    );
    const s = await spawnServer({ args: ['--tls-cert', cert, '--tls-key', key] });
    const sp = ['-p', String(s.port)];
    expect(cli([...sp, '--tls', '--cacert', cert, 'ping'])).toMatchObject({ code: 0, stdout: 'PONG\n' });
    const untrusted = cli([...sp, '--tls', 'ping']);
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toMatch(/^Could not connect to segkv at 127\.0\.0\.1:\d+: .*certificate/);
    // What to pass: the CA, or --insecure.
    expect(untrusted.stderr).toMatch(/not trusted .*--cacert FILE.*--insecure/);
    // Without --tls against a TLS server: said, with the flag to pass.
    const plain = cli([...sp, 'ping']);
    expect(plain.code).toBe(1);
    expect(plain.stderr).toMatch(/^Could not connect to segkv at 127\.0\.0\.1:\d+: .*TLS.*--tls/);
    expect(plain.stderr).not.toMatch(/CONNECTION_CLOSED/);
    // --tls against a server without TLS: said, with what to drop.
    const tlsToPlain = cli(['-p', String(server.port), '--tls', 'ping']);
    expect(tlsToPlain.code).toBe(1);
    expect(tlsToPlain.stderr).toMatch(
      /^Could not connect to segkv at 127\.0\.0\.1:\d+: the TLS handshake with .* failed \(wrong version number\): the server does not seem to speak TLS; connect without tls \(kv-cli without --tls\)\n$/,
    );
    expect(cli([...sp, '--tls', '--insecure', 'ping']).stdout).toBe('PONG\n');
    await s.stop();
  });
});

describe('help, compact, latency', () => {
  it('help CMD describes a command', () => {
    expect(cli(['help', 'set']).stdout).toBe(
      '\n  SET key value [EX seconds|PX milliseconds] [NX|XX]\n' +
        '  summary: Sets a key; EX/PX: expire after a time; NX: only if absent; XX: only if present (else nil).\n' +
        '  group: keys\n',
    );
  });

  it('compact waits for the compaction and prints what it did', () => {
    for (let i = 0; i < 3; i++) cli([...p, 'set', 'churn', `v${i}`]);
    const r = cli([...p, 'compact']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/"reclaimedBytes" => \(integer\) \d+/);
    const json = JSON.parse(cli(['--json', ...p, 'info', 'compaction']).stdout);
    expect(json.compaction.runs).toBeGreaterThanOrEqual(1);
  });

  it('--latency-samples N prints min/avg/max and exits', () => {
    const r = cli([...p, '--latency', '--latency-samples', '20', '-i', '0.001']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^min: \d+\.\d{3}, max: \d+\.\d{3}, avg: \d+\.\d{3} \(20 samples\)\n$/);
    const j = JSON.parse(cli([...p, '--json', '--latency', '--latency-samples', '5', '-i', '0']).stdout);
    expect(j.samples).toBe(5);
    expect(j.min).toBeLessThanOrEqual(j.avg);
    expect(j.avg).toBeLessThanOrEqual(j.max);
  });
});
