/**
 * The REPL's TAB completion and argument hints, as pure functions of the line
 * typed so far (the REPL draws them; tests call them directly).
 *
 * Completion: the first word completes to command names; the word after
 * `help` to command names and @groups; the word after `info` to INFO
 * sections. Completions keep the case the user types in (lower unless the
 * fragment is upper case).
 *
 * Hints follow redis-cli's hintsCallback: once the first word names a
 * command, show its argument synopsis minus the arguments already typed
 * (optional `[...]` parts are never consumed), with a leading space when the
 * line does not end in one.
 */
import { INFO_SECTIONS } from '../../src/protocol/messages.js';
import { COMMANDS, findCommand, GROUPS } from './commands.js';
import { splitArgs } from './quoting.js';

const NAMES = [...COMMANDS.keys()];

function inCaseOf(fragment: string, word: string): string {
  return fragment !== '' && /[A-Z]/.test(fragment) && fragment === fragment.toUpperCase()
    ? word.toUpperCase()
    : word.toLowerCase();
}

function matching(fragment: string, words: readonly string[]): string[] {
  const f = fragment.toUpperCase();
  return words.filter((w) => w.toUpperCase().startsWith(f)).map((w) => inCaseOf(fragment, w));
}

/** node:readline completer: [candidates, the fragment they replace]. */
export function complete(line: string): [string[], string] {
  const words = line.trimStart().split(/\s+/);
  const fragment = words[words.length - 1] ?? '';
  if (words.length <= 1) return [matching(fragment, NAMES), fragment];
  if (words.length === 2) {
    const first = words[0]!.toUpperCase();
    if (first === 'HELP') {
      return [matching(fragment, [...NAMES, ...GROUPS.map((g) => `@${g}`)]), fragment];
    }
    if (first === 'INFO') return [matching(fragment, INFO_SECTIONS).map((s) => s.toLowerCase()), fragment];
  }
  return [[], fragment];
}

/** The grey hint to show after `line` (cursor at its end), or undefined. */
export function hintFor(line: string): string | undefined {
  let argv: Buffer[];
  try {
    argv = splitArgs(line);
  } catch {
    return undefined; // an open quote: no hint, as in redis-cli
  }
  if (argv.length === 0) return undefined;
  const c = findCommand(argv[0]!.toString('utf8'));
  if (!c || c.params === '') return undefined;
  let hint = c.params;
  let toRemove = argv.length - 1;
  while (toRemove > 0 && hint.length > 0) {
    if (hint[0] === '[') break;
    if (hint[0] === ' ') toRemove--;
    hint = hint.slice(1);
  }
  if (hint === '') return undefined;
  return /\s$/.test(line) ? hint : ` ${hint}`;
}
