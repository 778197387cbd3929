/**
 * `kv-cli --pipe` against a real kv-server: 100k commands loaded with a
 * bounded window and counted back, RESP input, and error accounting.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { type ServerProcess, spawnServer } from '../server/spawn.js';
import { cli, ensureBuilt, KV_CLI } from './helpers.js';

let server: ServerProcess;
let p: string[];

beforeAll(async () => {
  ensureBuilt();
  server = await spawnServer();
  p = ['-p', String(server.port)];
});

describe('--pipe', () => {
  it('loads 100k commands and every key is there afterwards', () => {
    const n = 100_000;
    const lines: string[] = [];
    for (let i = 0; i < n; i++) lines.push(`set bulk:${i} "value ${i}"`);
    const r = cli([...p, '--pipe', '--pipe-window', '2000'], `${lines.join('\n')}\n`);
    // The summary once, on stdout, with time and rate; nothing on stderr when nothing went wrong.
    expect(r.stdout).toMatch(/^sent: 100000, replies: 100000, errors: 0 \([\d.]+s, [\d,]+ cmds\/s\)\n$/);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(cli([...p, 'dbsize']).stdout).toBe(`(integer) ${n}\n`);
    expect(cli([...p, 'get', 'bulk:99999']).stdout).toBe('"value 99999"\n');
    // And by SCAN: the last page of the prefix ends the scan.
    const page = JSON.parse(cli(['--json', ...p, 'scan', 'prefix', 'bulk:9999', 'count', '1000']).stdout);
    expect(page).toEqual({
      cursor: null,
      keys: [...Array(11)].map((_, i) => (i === 0 ? 'bulk:9999' : `bulk:9999${i - 1}`)),
    });
  });

  it('on a terminal the progress line is erased at the end: the summary is said once', () => {
    const dir = mkdtempSync(join(tmpdir(), 'segkv-pipe-tty-'));
    try {
      const input = join(dir, 'in.txt');
      const lines = Array.from({ length: 30_000 }, (_, i) => `set tty:${i} v${i}`);
      writeFileSync(input, `${lines.join('\n')}\n`);
      // script(1) gives kv-cli a terminal for stdout and stderr, as a user at a shell has.
      const command = `${process.execPath} ${KV_CLI} ${p.join(' ')} --pipe < ${input}`;
      const r = spawnSync('script', ['-qec', command, '/dev/null'], { encoding: 'utf8', timeout: 60_000 });
      expect(r.status, r.stdout).toBe(0);
      // What stays on the screen: each line as the last carriage return and erase-line leave it.
      const screen = r.stdout
        .split(/\r?\n/)
        .map((l) =>
          l
            .slice(l.lastIndexOf('\r') + 1)
            .split('\x1b[0K')
            .join(''),
        )
        .filter((l) => l.trim() !== '');
      expect(screen).toHaveLength(1);
      expect(screen[0]).toMatch(/^sent: 30000, replies: 30000, errors: 0 \([\d.]+s, [\d,]+ cmds\/s\)$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('takes RESP as redis-cli --pipe does', () => {
    const resp = (...args: string[]) =>
      `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
    const input = resp('SET', 'resp:1', 'line1\r\nline2') + resp('INCR', 'resp:n') + resp('INCR', 'resp:n');
    const r = cli([...p, '--pipe', '--json'], input);
    expect(JSON.parse(r.stdout)).toMatchObject({ sent: 3, replies: 3, errors: 0, connectionLost: false });
    expect(cli(['--raw', ...p, 'mget', 'resp:1', 'resp:n']).stdout).toBe('line1\r\nline2\n2\n');
  });

  it('counts and shows errors with their line, and exits 1', () => {
    const input = ['set e:1 a', 'nosuch', 'set "open', 'incr e:1', 'get e:1', '# comment', ''].join('\n');
    const r = cli([...p, '--pipe'], input);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^sent: 3, replies: 3, errors: 3 \([\d.]+s, [\d,]+ cmds\/s\)\n$/);
    expect(r.stderr).not.toMatch(/sent|replies/);
    expect(r.stderr).toContain("line 2: (error) UNKNOWN_COMMAND unknown command 'nosuch'");
    expect(r.stderr).toContain('line 3: (error) ERR Invalid argument(s): unbalanced double quote');
    expect(r.stderr).toContain('line 4: (error) INVALID_VALUE');
  });

  it('fails fast when the server is unreachable', () => {
    const r = cli(['-p', '1', '--pipe'], 'set a 1\n');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^Could not connect to segkv at 127\.0\.0\.1:1/);
  });
});
