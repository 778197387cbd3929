import { describe, expect, it } from 'vitest';
import { compileGlob, globMatch, globPrefix } from '../../src/engine/glob.js';

// [pattern, subject, matches] — Redis's stringmatchlen answers (util.c and its keyspace tests).
const CASES: [string, string, boolean][] = [
  ['*', 'anything', true],
  ['*', 'x', true],
  ['user:*', 'user:1', true],
  ['user:*', 'user:', true],
  ['user:*', 'use', false],
  ['*:1', 'user:1', true],
  ['*:1', 'user:12', false],
  ['*:1', 'a:1:1', true],
  ['h?llo', 'hello', true],
  ['h?llo', 'hallo', true],
  ['h?llo', 'hllo', false],
  ['h*llo', 'hllo', true],
  ['h*llo', 'heeeello', true],
  ['h[ae]llo', 'hello', true],
  ['h[ae]llo', 'hallo', true],
  ['h[ae]llo', 'hillo', false],
  ['h[^e]llo', 'hallo', true],
  ['h[^e]llo', 'hello', false],
  ['h[a-b]llo', 'hbllo', true],
  ['h[a-b]llo', 'hcllo', false],
  ['h[b-a]llo', 'hallo', true], // reversed range ends are swapped
  ['[a-]', ']', true], // "a-]" is a range from a to ] (swapped: ] to a), the class never closes
  ['[a-]x', 'a', true],
  ['[a-]x', '-x', false], // x is one more member of that unclosed class
  ['[\\]]', ']', true],
  ['[\\-]', '-', true],
  ['[abc', 'a', true], // an unclosed class ends with the pattern
  ['[abc', 'ab', false],
  ['[^', 'a', true],
  ['a\\*b', 'a*b', true],
  ['a\\*b', 'axb', false],
  ['a\\?', 'a?', true],
  ['a\\?', 'ab', false],
  ['\\[x]', '[x]', true],
  ['a\\', 'a\\', true], // a trailing backslash is itself
  ['a\\\\', 'a\\', true],
  ['', 'a', false],
  ['abc', 'abc', true],
  ['abc', 'abcd', false],
  ['abc*', 'ab', false],
  ['a*b*c', 'aXbYc', true],
  ['a*b*c', 'aXbY', false],
  ['**a', 'ba', true],
  ['a**', 'a', true],
  ['*a*', 'bab', true],
  ['?', '\u00c3', true], // one byte of a multi-byte UTF-8 character (internal form: latin1 of the bytes)
  ['??', '\u00c3\u00a9', true],
];

describe('globMatch (Redis stringmatchlen semantics)', () => {
  it.each(CASES)('%j vs %j → %s', (pattern, subject, expected) => {
    expect(globMatch(pattern, subject)).toBe(expected);
    expect(compileGlob(pattern).test(subject)).toBe(expected);
  });

  it('nocase folds ASCII letters only', () => {
    expect(globMatch('HELLO', 'hello', true)).toBe(true);
    expect(globMatch('[A-C]x', 'bX', true)).toBe(true);
    expect(globMatch('HELLO', 'hello')).toBe(false);
  });

  it('is not exponential on star-heavy patterns that fail', () => {
    const started = performance.now();
    expect(globMatch('a*a*a*a*a*a*a*a*a*a*a*a*b', 'a'.repeat(60))).toBe(false);
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('more than 1000 nested stars never match (Redis abuse guard)', () => {
    const pattern = `${'a*'.repeat(1002)}b`;
    expect(globMatch(pattern, `${'a'.repeat(1002)}b`)).toBe(false);
    expect(globMatch(`${'a*'.repeat(10)}b`, `${'a'.repeat(10)}b`)).toBe(true);
  });
});

describe('globPrefix', () => {
  it.each([
    ['user:*', 'user:', true],
    ['user:*:name', 'user:', false],
    ['*', '', true],
    ['abc', 'abc', false],
    ['a\\*b*', 'a*b', true],
    ['a?', 'a', false],
    ['a[b]', 'a', false],
    ['a**', 'a', true],
  ])('%j → prefix %j, prefixOnly %s', (pattern, prefix, prefixOnly) => {
    expect(globPrefix(pattern)).toEqual({ prefix, prefixOnly });
  });
});
