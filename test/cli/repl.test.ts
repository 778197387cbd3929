/**
 * The interactive kv-cli: driven through piped stdin (replies, errors,
 * quoting, help, the repeat prefix, quit, the history file), across a server
 * restart (it reconnects), and through a pseudo-terminal (python3's pty
 * module) for the prompt, TAB completion and the dim argument hint.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ServerProcess, spawnServer } from '../server/spawn.js';
import { cli, ensureBuilt, inPty, LiveCli } from './helpers.js';

let server: ServerProcess;
let p: string[];
const home = mkdtempSync(join(tmpdir(), 'segkv-cli-'));

beforeAll(async () => {
  ensureBuilt();
  server = await spawnServer();
  p = ['-p', String(server.port)];
});

afterAll(() => rmSync(home, { recursive: true, force: true }));

describe('REPL on piped stdin', () => {
  it('runs each line in order and prints replies and errors, no prompt', () => {
    const history = join(home, 'history-1');
    const input = [
      'set greeting "hello world"',
      'get greeting',
      "SET 'it''s' x", // a closing quote glued to a word
      'set bin "\\x00\\xff"',
      'get bin',
      '3 incr counter',
      'nosuch key',
      'get',
      'auth secret',
      '',
      'help get',
      'del greeting',
      'quit',
      'set after-quit 1',
    ].join('\n');
    const r = cli(p, `${input}\n`, { SEGKV_HISTORY: history });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(
      [
        'OK',
        '"hello world"',
        'Invalid argument(s): a closing single quote must be followed by a space',
        'OK',
        '"\\x00\\xff"',
        '(integer) 1',
        '(integer) 2',
        '(integer) 3',
        "(error) UNKNOWN_COMMAND unknown command 'nosuch'; type help for the list",
        '(error) WRONG_ARGS wrong number of arguments for GET; usage: GET key',
        '(error) AUTH_FAILED this server has no password set; do not send AUTH',
        '',
        '  GET key',
        '  summary: Gets the value of a key, or nil.',
        '  group: keys',
        '(integer) 1',
        '',
      ].join('\n'),
    );
    expect(cli([...p, 'exists', 'after-quit']).stdout).toBe('(integer) 0\n');
    // Every command line but AUTH (a password) and blanks, in order, quoting kept.
    const saved = readFileSync(history, 'utf8').split('\n');
    expect(saved).toEqual([
      'set greeting "hello world"',
      'get greeting',
      'set bin "\\x00\\xff"',
      'get bin',
      '3 incr counter',
      'nosuch key',
      'get',
      'help get',
      'del greeting',
      'quit',
      '',
    ]);
  });

  it('--raw and --json apply to the REPL too', () => {
    expect(cli(['--raw', ...p], 'set r 1\nget r\nget none\n').stdout).toBe('OK\n1\n\n');
    expect(cli(['--json', ...p], 'mget r none\n').stdout).toBe('["1",null]\n');
  });

  it('reconnects when the server comes back', async () => {
    const own = await spawnServer();
    const repl = new LiveCli(['-p', String(own.port)], { SEGKV_HISTORY: '' });
    repl.send('set survives yes');
    await repl.waitFor('OK\n');
    await own.stop();
    repl.send('get survives');
    await repl.waitFor(/Could not connect to segkv at 127\.0\.0\.1:\d+: /);
    const again = await spawnServer({ dir: own.dir, port: own.port });
    // The client retries at most a second apart; a command waits 1.5 s for it.
    for (let i = 0; i < 10 && !repl.stdout.includes('"yes"'); i++) {
      repl.send('get survives');
      await new Promise((r) => setTimeout(r, 700));
    }
    await repl.waitFor('"yes"\n');
    repl.end();
    expect(await repl.exited).toBe(0);
    await again.stop();
  });
});

const ESC = String.fromCharCode(0x1b);

const hasPty = spawnSync('python3', ['-c', 'import pty'], { stdio: 'ignore' }).status === 0;

describe.skipIf(!hasPty)('REPL in a terminal', () => {
  it('prompts with host:port, completes on TAB, hints the arguments in dim, keeps history', () => {
    const history = join(home, 'history-pty');
    const prompt = `127.0.0.1:${server.port}> `;
    const { out, status } = inPty(
      p,
      [
        ['', prompt],
        ['se\t', '\x1b[2m key value [EX seconds|PX milliseconds] [NX|XX]\x1b[0m'],
        [' tk', '\x1b[2m value [EX seconds|PX milliseconds] [NX|XX]\x1b[0m'],
        [' tv\r', 'OK\r\n'],
        ['', prompt],
        ['get tk\r', '"tv"\r\n'],
        ['', prompt],
        ['quit\r', ''],
      ],
      { SEGKV_HISTORY: history },
    );
    // The hint is drawn after the cursor and the cursor moved back over it.
    expect(out).toContain(`\x1b[2m key value [EX seconds|PX milliseconds] [NX|XX]\x1b[0m\x1b[47D`);
    // TAB completed `se` to `set`: the hint drawn next is set's.
    expect(out).toContain('set\x1b[0K\x1b[2m key value');
    expect(status).toBe(0); // `quit` left with status 0
    expect(cli([...p, 'get', 'tk']).stdout).toBe('"tv"\n');
    expect(readFileSync(history, 'utf8')).toBe('set tk tv\nget tk\nquit\n');
  });

  it('shows not connected> while the server is down', () => {
    const { out, status } = inPty(
      ['-p', '1'],
      [
        ['', 'not connected> '],
        ['\x04', ''],
      ],
    );
    const plain = out.replaceAll(new RegExp(`${ESC}\\[\\d*[GJ]`, 'g'), ''); // readline cursor moves
    expect(plain).toMatch(/Could not connect to segkv at 127\.0\.0\.1:1: [^\n]*\r\nnot connected> /);
    expect(status).toBe(0); // Ctrl-D leaves
  });

  it('Ctrl-C clears a typed line; Ctrl-C or Ctrl-D at an empty prompt leaves on a new line, as redis-cli', () => {
    const prompt = `127.0.0.1:${server.port}> `;
    // What the terminal shows: readline redraws a line from column 1 (ESC[1G ESC[0J), so only the
    // last drawing of each line counts; the dim hints and cursor moves are dropped.
    const redraw = `${ESC}[1G${ESC}[0J`;
    const plain = (out: string) =>
      out
        .split('\n')
        .map((line) => {
          const at = line.lastIndexOf(redraw);
          return at < 0 ? line : line.slice(at + redraw.length);
        })
        .join('\n')
        .replaceAll(new RegExp(`${ESC}\\[2m[^${ESC}]*${ESC}\\[0m|${ESC}\\[\\d*[DGJK]`, 'g'), '');
    for (const leave of ['\x03', '\x04']) {
      const { out, status } = inPty(p, [
        ['', prompt],
        ['get half', 'alf'],
        ['\x03', `^C\r\n`],
        ['', prompt],
        [leave, ''],
      ]);
      expect(status).toBe(0);
      // The half-typed command was dropped, not run; the prompt's line was ended, and nothing
      // (no "not connected>" from the closing connection) was drawn after it.
      expect(plain(out)).toMatch(new RegExp(`get half\\^C\\r\\n${prompt}\\r\\n$`));
    }
  });

  it('compact draws a progress bar on the terminal, then prints the result', () => {
    cli([...p, 'mset', 'c1', 'a', 'c2', 'b']);
    cli([...p, 'mset', 'c1', 'x', 'c2', 'y']);
    const { out, status } = inPty(
      [...p, 'compact'],
      [
        ['', 'compacting ['],
        ['', '"reclaimedBytes" => '],
      ],
    );
    expect(status).toBe(0);
    expect(out).toMatch(/\rcompacting \[[-#]{30}\] /);
    // The bar is erased before the reply (numbers padded to the widest).
    const erased = out.indexOf('\r\x1b[0K');
    expect(erased).toBeGreaterThan(-1);
    expect(out.slice(erased + '\r\x1b[0K'.length)).toMatch(/^ *1# "reason" => /);
  });
});
