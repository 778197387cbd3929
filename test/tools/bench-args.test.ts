/**
 * The benchmarks' command line (tools/bench/lib.ts benchArgs, node:util
 * parseArgs underneath): values and flags come through, and a mistake is a
 * UsageError naming it, which runMain turns into one line and exit status 2.
 */
import { describe, expect, it } from 'vitest';
import { benchArgs, UsageError } from '../../tools/bench/lib.js';

const HELP = 'usage: test\n';
const SPECS = { keys: { type: 'string' }, quick: { type: 'boolean' } } as const;

function usageError(argv: string[]): string {
  try {
    benchArgs(argv, HELP, SPECS);
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return (err as Error).message;
  }
  throw new Error('parsed without an error');
}

describe('benchArgs', () => {
  it('gives string values and flags; absent ones are undefined and false', () => {
    const a = benchArgs(['--keys', '1000', '--quick'], HELP, SPECS);
    expect(a.string('keys')).toBe('1000');
    expect(a.flag('quick')).toBe(true);
    const none = benchArgs([], HELP, SPECS);
    expect(none.string('keys')).toBeUndefined();
    expect(none.flag('quick')).toBe(false);
    expect(benchArgs(['--keys=7'], HELP, SPECS).string('keys')).toBe('7');
  });

  it('refuses unknown options, missing values and positionals with one line pointing at --help', () => {
    expect(usageError(['--bogus'])).toBe("Unknown option '--bogus'; see --help");
    expect(usageError(['--keys'])).toMatch(/^Option '--keys <value>' argument missing; see --help$/);
    expect(usageError(['extra'])).toBe("Unexpected argument 'extra'; see --help");
  });
});
