/**
 * kv-cli's pure parts, without a server: redis-cli quoting both ways, reply
 * formatting in the three modes, TAB completion and hints, the prompt,
 * history rules, command-line flags, --pipe input parsing, progress lines.
 */
import { describe, expect, it } from 'vitest';
import { progressLine } from '../../tools/kv-cli/compact-progress.js';
import { complete, hintFor } from '../../tools/kv-cli/completion.js';
import { savable } from '../../tools/kv-cli/history.js';
import { latencyLine } from '../../tools/kv-cli/latency.js';
import { parseOptions } from '../../tools/kv-cli/options.js';
import { type PipeItem, readCommands } from '../../tools/kv-cli/pipe-input.js';
import { QuoteError, quote, splitArgs } from '../../tools/kv-cli/quoting.js';
import { promptFor } from '../../tools/kv-cli/repl.js';
import {
  bulk,
  formatHuman,
  formatRaw,
  integer,
  mapOf,
  NIL,
  OK,
  type Reply,
  toJson,
} from '../../tools/kv-cli/reply.js';

const words = (line: string) => splitArgs(line).map((b) => b.toString('utf8'));

describe('quoting (redis-cli sdssplitargs)', () => {
  it('splits on whitespace and keeps quoted spaces', () => {
    expect(words('  set  k   "hello world" ')).toEqual(['set', 'k', 'hello world']);
    expect(words("set k 'a b'\tx")).toEqual(['set', 'k', 'a b', 'x']);
  });

  it("handles escapes in double quotes and only \\' in single quotes", () => {
    expect(splitArgs('"a\\x41\\n\\t\\"b\\\\"')[0]).toEqual(Buffer.from('aA\n\t"b\\'));
    expect(splitArgs('"\\xff\\x00"')[0]).toEqual(Buffer.from([0xff, 0x00]));
    expect(words("'it\\'s' 'a\\nb'")).toEqual(["it's", 'a\\nb']);
    expect(words('"\\xZZ"')).toEqual(['xZZ']); // not hex: \x is x
    expect(words('foo"bar baz"')).toEqual(['foobar baz']);
    expect(words('""')).toEqual(['']);
  });

  it('rejects unbalanced quotes and a closing quote glued to a word', () => {
    expect(() => splitArgs('set "k')).toThrow(QuoteError);
    expect(() => splitArgs("set 'k")).toThrow(/unbalanced single quote/);
    expect(() => splitArgs('set "k"v')).toThrow(/followed by a space/);
  });

  it('quotes output so it can be typed back', () => {
    const samples = [
      Buffer.from('plain'),
      Buffer.from('a "q" \\ \n\r\t'),
      Buffer.from([0, 1, 0xff, 0x7f]),
      Buffer.from('é中😀'),
    ];
    for (const s of samples) expect(splitArgs(quote(s))[0]).toEqual(s);
    expect(quote(Buffer.from('é'))).toBe('"é"');
    expect(quote(Buffer.from([0xc3]))).toBe('"\\xc3"'); // a lone lead byte is not UTF-8
    expect(quote(Buffer.from('a\nb'))).toBe('"a\\nb"');
  });
});

describe('reply formats', () => {
  const list: Reply = { type: 'array', items: [bulk('a'), NIL, integer(3)] };

  it('human: redis-cli look', () => {
    expect(formatHuman(OK)).toBe('OK');
    expect(formatHuman(bulk('v'))).toBe('"v"');
    expect(formatHuman(NIL)).toBe('(nil)');
    expect(formatHuman(integer(2))).toBe('(integer) 2');
    expect(formatHuman({ type: 'error', code: 'WRONG_ARGS', message: 'bad' })).toBe('(error) WRONG_ARGS bad');
    expect(formatHuman(list)).toBe('1) "a"\n2) (nil)\n3) (integer) 3');
    expect(formatHuman({ type: 'array', items: [] })).toBe('(empty array)');
    const nested: Reply = {
      type: 'array',
      items: [bulk('0'), { type: 'array', items: [bulk('x'), bulk('y')] }],
    };
    expect(formatHuman(nested)).toBe('1) "0"\n2) 1) "x"\n   2) "y"');
    const ten: Reply = { type: 'array', items: Array.from({ length: 10 }, (_, i) => integer(i)) };
    expect(formatHuman(ten).split('\n')[0]).toBe(' 1) (integer) 0');
    expect(formatHuman(mapOf({ a: 1, b: 'x' }))).toBe('1# "a" => (integer) 1\n2# "b" => "x"');
    expect(
      formatHuman({ type: 'info', sections: { keyspace: { keys: 3 }, storage: { cache: { hits: 1 } } } }),
    ).toBe('# Keyspace\nkeys:3\n\n# Storage\ncache.hits:1');
  });

  it('raw: bare bytes, nil as an empty line', () => {
    expect(formatRaw(list).toString()).toBe('a\n\n3');
    expect(formatRaw(bulk(Buffer.from([0xff, 0x0a])))).toEqual(Buffer.from([0xff, 0x0a]));
  });

  it('json: values, null, base64 for bytes that are not UTF-8', () => {
    expect(toJson(list)).toEqual(['a', null, 3]);
    expect(toJson(bulk(Buffer.from([0xff])))).toEqual({ base64: '/w==' });
    expect(toJson({ type: 'error', code: 'X', message: 'm' })).toEqual({
      error: { code: 'X', message: 'm' },
    });
    expect(toJson(mapOf({ ok: true, n: null }))).toEqual({ ok: true, n: null });
  });
});

describe('completion and hints', () => {
  it('completes command names in the case typed', () => {
    expect(complete('se')).toEqual([['set'], 'se']);
    expect(complete('SE')).toEqual([['SET'], 'SE']);
    expect(complete('d')[0]).toEqual(['del', 'decr', 'decrby', 'dbsize']);
    expect(complete('zz')).toEqual([[], 'zz']);
    expect(complete('help co')).toEqual([['compact'], 'co']);
    expect(complete('help @c')).toEqual([['@connection', '@cli'], '@c']);
    expect(complete('info comp')).toEqual([['compaction'], 'comp']);
    expect(complete('set k')).toEqual([[], 'k']);
  });

  it('hints the arguments not typed yet, like redis-cli', () => {
    expect(hintFor('set')).toBe(' key value [EX seconds|PX milliseconds] [NX|XX]');
    expect(hintFor('SET ')).toBe('key value [EX seconds|PX milliseconds] [NX|XX]');
    expect(hintFor('set k')).toBe(' value [EX seconds|PX milliseconds] [NX|XX]');
    expect(hintFor('set k v ')).toBe('[EX seconds|PX milliseconds] [NX|XX]');
    expect(hintFor('get k')).toBeUndefined();
    expect(hintFor('del a b ')).toBe('[key ...]');
    expect(hintFor('dbsize')).toBeUndefined();
    expect(hintFor('nosuch ')).toBeUndefined();
    expect(hintFor('set "open')).toBeUndefined();
    expect(hintFor('')).toBeUndefined();
  });

  it('prompts with the address, or not connected', () => {
    expect(promptFor({ host: '127.0.0.1', port: 7379 }, true)).toBe('127.0.0.1:7379> ');
    expect(promptFor({ host: '127.0.0.1', port: 7379 }, false)).toBe('not connected> ');
  });

  it('never saves AUTH or empty lines in history', () => {
    expect(savable('set a b')).toBe(true);
    expect(savable('  auth secret')).toBe(false);
    expect(savable('   ')).toBe(false);
  });
});

describe('command line', () => {
  it('stops options at the command, so values may start with -', () => {
    const o = parseOptions(['-p', '7000', 'set', 'k', '-1'], {});
    expect(o).toMatchObject({ port: 7000, mode: 'command', command: ['set', 'k', '-1'], output: 'human' });
  });

  it('reads modes, output and the password env', () => {
    expect(parseOptions([], { SEGKV_CLI_AUTH: 'pw' })).toMatchObject({
      mode: 'repl',
      password: 'pw',
      passwordFrom: 'env',
    });
    expect(parseOptions(['--pipe', '--json'], {})).toMatchObject({ mode: 'pipe', output: 'json' });
    expect(parseOptions(['--latency', '--latency-samples', '5', '-i', '0'], {})).toMatchObject({
      mode: 'latency',
      latencySamples: 5,
      intervalMs: 0,
    });
    expect(parseOptions(['-r', '3', '-i', '0.5', 'ping'], {})).toMatchObject({ repeat: 3, intervalMs: 500 });
    expect(parseOptions(['--scan', '--pattern', 'user:*'], {})).toMatchObject({
      mode: 'scan',
      pattern: 'user:*',
    });
    expect(parseOptions(['--help'], {})).toBe('help');
  });

  it('rejects contradictions', () => {
    expect(() => parseOptions(['--raw', '--json', 'get', 'k'], {})).toThrow(/exclude/);
    expect(() => parseOptions(['--pipe', 'get', 'k'], {})).toThrow(/takes no command/);
    expect(() => parseOptions(['-p', '0'], {})).toThrow(/port/);
    expect(() => parseOptions(['--cacert', 'x'], {})).toThrow(/need --tls/);
    expect(() => parseOptions(['--bogus'], {})).toThrow();
  });
});

async function collect(chunks: (string | Buffer)[]): Promise<PipeItem[]> {
  const out: PipeItem[] = [];
  for await (const item of readCommands(chunks)) out.push(item);
  return out;
}

const argsOf = (items: PipeItem[]) => items.map((i) => ('args' in i ? i.args.map(String) : i.error));

describe('--pipe input', () => {
  it('reads quoted lines across chunk boundaries, skipping blanks and comments', async () => {
    const items = await collect(['set a "1 2"\r\n\n# note\nse', 't b 2\nget a']);
    expect(argsOf(items)).toEqual([
      ['set', 'a', '1 2'],
      ['set', 'b', '2'],
      ['get', 'a'],
    ]);
    expect(items.map((i) => i.line)).toEqual([1, 4, 5]);
  });

  it('reports a bad line and goes on', async () => {
    const items = await collect(['set "a\nget a\n']);
    expect(argsOf(items)).toEqual(['Invalid argument(s): unbalanced double quote', ['get', 'a']]);
  });

  it('reads RESP, binary-safe, across chunk boundaries', async () => {
    const resp = '*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\na\r\nb\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n';
    const items = await collect([resp.slice(0, 17), resp.slice(17)]);
    expect(argsOf(items)).toEqual([
      ['SET', 'k', 'a\r\nb'],
      ['GET', 'k'],
    ]);
    expect(argsOf(await collect(['*2\r\n$3\r\nGET\r\n$1\r\nkk\r\n']))[0]).toMatch(/not followed/);
  });
});

describe('progress lines', () => {
  it('draws the compaction bar from INFO progress', () => {
    expect(progressLine(null, 200)).toMatch(/^compacting \[-+\] {2}starting {2}0\.2s$/);
    const line = progressLine({ segmentsDone: 1, segmentsTotal: 2, bytesDone: 512, bytesTotal: 1024 }, 1500);
    expect(line).toBe(
      `compacting [${'#'.repeat(15)}${'-'.repeat(15)}]  50%  512 B/1.0 KiB  segments 1/2  1.5s`,
    );
  });

  it('prints latency like redis-cli', () => {
    expect(latencyLine({ min: 0.1, max: 2, avg: 0.5, samples: 10 })).toBe(
      'min: 0.100, max: 2.000, avg: 0.500 (10 samples)',
    );
  });
});
