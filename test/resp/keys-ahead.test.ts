/**
 * RespReader.keysAhead: the look-ahead the RESP connection warms the keydir
 * with before a received batch runs. It finds the keys of the GETs
 * complete in the buffer, stops at anything it does not read (an inline
 * request, a partial one, a long one), and never moves the read position:
 * next() returns every request afterwards, as without it.
 */
import { describe, expect, it } from 'vitest';
import { LOOKAHEAD_FRAMES } from '../../src/protocol/limits.js';
import { RespReader } from '../../src/resp/parser.js';

function multibulk(...args: string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
}

function reader(text: string): RespReader {
  const r = new RespReader({ maxArgs: 1024, maxRequestBytes: 1 << 20, preAuth: false });
  r.push(Buffer.from(text, 'latin1'));
  return r;
}

function keys(r: RespReader, max = LOOKAHEAD_FRAMES): string[] {
  const spans = new Int32Array(2 * LOOKAHEAD_FRAMES);
  const n = r.keysAhead(spans, max);
  const out: string[] = [];
  for (let j = 0; j < n; j++)
    out.push(r.aheadBytes.subarray(spans[2 * j]!, spans[2 * j]! + spans[2 * j + 1]!).toString('latin1'));
  return out;
}

function drain(r: RespReader): string[][] {
  const out: string[][] = [];
  for (let req = r.next(); req !== undefined; req = r.next()) out.push(req.map((b) => b.toString('latin1')));
  return out;
}

describe('RespReader.keysAhead', () => {
  it('finds the keys of complete GETs (any case), skips other commands (SET included), stops at a partial request', () => {
    const text =
      multibulk('GET', 'k1') +
      multibulk('set', 'k2', 'v'.repeat(300)) +
      multibulk('DEL', 'a', 'b') +
      multibulk('Set', 'k3', 'v', 'EX', '10') +
      multibulk('get', '') +
      multibulk('GETSET', 'x', 'y') +
      multibulk('GET', 'k4') +
      multibulk('GET', 'partial').slice(0, -3);
    const r = reader(text);
    expect(keys(r)).toEqual(['k1', '', 'k4']);
    // The read position did not move.
    expect(drain(r)).toEqual([
      ['GET', 'k1'],
      ['set', 'k2', 'v'.repeat(300)],
      ['DEL', 'a', 'b'],
      ['Set', 'k3', 'v', 'EX', '10'],
      ['get', ''],
      ['GETSET', 'x', 'y'],
      ['GET', 'k4'],
    ]);
  });

  it('stops at an inline request, a long one, a malformed one, and after `max` requests', () => {
    expect(keys(reader(`${multibulk('GET', 'a')}GET b\r\n${multibulk('GET', 'c')}`))).toEqual(['a']);
    const many = multibulk('MSET', ...Array.from({ length: 20 }, (_, i) => `k${i}`));
    expect(keys(reader(multibulk('GET', 'a') + many + multibulk('GET', 'c')))).toEqual(['a']);
    expect(keys(reader(`${multibulk('GET', 'a')}*2\r\n$x\r\nGET\r\n${multibulk('GET', 'c')}`))).toEqual([
      'a',
    ]);
    expect(keys(reader(`${multibulk('GET', 'a')}*-1\r\n${multibulk('GET', 'c')}`))).toEqual(['a']);
    const ten = Array.from({ length: 10 }, (_, i) => multibulk('GET', `k${i}`)).join('');
    expect(keys(reader(ten), 3)).toEqual(['k0', 'k1', 'k2']);
    expect(keys(reader(''))).toEqual([]);
  });

  it('finds nothing while a request is partly read (between its bulks)', () => {
    const full = multibulk('SET', 'k', 'v') + multibulk('GET', 'k');
    const r = reader(full.slice(0, 14)); // *3, $3 SET, and part of the key's bulk
    expect(r.next()).toBeUndefined();
    r.push(Buffer.from(full.slice(14)));
    expect(keys(r)).toEqual([]);
    expect(drain(r)).toEqual([
      ['SET', 'k', 'v'],
      ['GET', 'k'],
    ]);
  });
});
