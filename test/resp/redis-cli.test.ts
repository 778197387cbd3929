/**
 * redis-cli (Debian's redis-tools) against a real kv-server process: the
 * same port serves it, commands answer as Redis answers them.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ServerProcess, spawnServer } from '../server/spawn.js';
import { haveTools } from './peers.js';

function cli(port: number, ...args: string[]): string {
  return execFileSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8', timeout: 10_000 });
}

describe.runIf(haveTools('redis-cli'))('redis-cli against kv-server', () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await spawnServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('ping answers PONG on the native port', () => {
    expect(cli(server.port, 'ping')).toBe('PONG\n');
  });

  it('set, get, incr, del, exists, mget with Redis replies', () => {
    expect(cli(server.port, 'set', 'greeting', 'hello')).toBe('OK\n');
    expect(cli(server.port, 'get', 'greeting')).toBe('hello\n');
    expect(cli(server.port, 'get', 'missing')).toBe('\n');
    expect(cli(server.port, 'incr', 'counter')).toBe('1\n');
    expect(cli(server.port, 'incrby', 'counter', '41')).toBe('42\n');
    expect(cli(server.port, 'mget', 'greeting', 'missing', 'counter')).toBe('hello\n\n42\n');
    expect(cli(server.port, 'exists', 'greeting', 'greeting', 'missing')).toBe('2\n');
    expect(cli(server.port, 'del', 'greeting', 'counter', 'missing')).toBe('2\n');
  });

  it('errors carry Redis prefixes and wording', () => {
    expect(cli(server.port, 'nosuch', 'a', 'b')).toBe(
      "ERR unknown command 'nosuch', with args beginning with: 'a' 'b' \n\n",
    );
    expect(cli(server.port, 'get')).toBe("ERR wrong number of arguments for 'get' command\n\n");
    expect(cli(server.port, 'select', '1')).toBe('ERR DB index is out of range\n\n');
  });

  it('--scan --pattern walks the integer cursors', () => {
    for (let i = 0; i < 30; i++) cli(server.port, 'set', `user:${i}`, 'x');
    const keys = cli(server.port, '--scan', '--pattern', '*:1*').trim().split('\n').sort();
    expect(keys).toEqual(['user:1', ...Array.from({ length: 10 }, (_, i) => `user:1${i}`)].sort());
  });

  it('RESP3 after HELLO 3', () => {
    expect(cli(server.port, '-3', 'hello', '3')).toContain('proto 3\n');
  });

  it('the native protocol still works on the same port (kv-cli)', () => {
    const out = execFileSync('node', ['dist/tools/kv-cli.js', '-p', String(server.port), 'get', 'user:1'], {
      encoding: 'utf8',
    });
    expect(out).toBe('"x"\n');
  });
});
