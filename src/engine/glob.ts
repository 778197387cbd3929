/**
 * Glob patterns over keys, with Redis's semantics (its `stringmatchlen`,
 * util.c, as of Redis 7): the one matcher behind KEYS and SCAN MATCH in the
 * RESP protocol, the native SCAN `match` option and `Store.scan({ match })`.
 *
 *   *        any run of bytes, the empty one included
 *   ?        exactly one byte
 *   [abc]    one of the bytes listed; [^abc] none of them; [a-z] a range
 *            (reversed ends are swapped: [z-a] = [a-z]); \x inside is x
 *   \x       x itself (so \* is a star, \\ a backslash); a trailing \ is a \
 *   other    that byte
 *
 * Patterns and subjects are the engine's internal key form (keys.ts: the
 * latin1 string of the bytes), so matching is by bytes, as in Redis: `?`
 * matches one byte of a multi-byte UTF-8 character. Quirks kept on purpose,
 * because clients see them: an unclosed `[` matches up to the pattern's end
 * (`[abc` = `[abc]`), range ends compare as signed chars (Redis's `char`),
 * and more than 1000 nested `*` never match (Redis's abuse guard).
 *
 * Cost: a `*` tries each remaining position once; the `skipLonger` flag
 * (Redis 7.2's) stops retrying earlier stars once a suffix failed everywhere,
 * so no pattern is exponential.
 */

/** Redis's bound on `*` recursion: deeper patterns never match. */
const MAX_STAR_NESTING = 1000;

const STAR = 0x2a;
const QUESTION = 0x3f;
const OPEN = 0x5b;
const CLOSE = 0x5d;
const BACKSLASH = 0x5c;
const CARET = 0x5e;
const DASH = 0x2d;

/** A char code as C's signed `char` (Redis compares range ends that way). */
function signed(c: number): number {
  return c > 0x7f ? c - 0x100 : c;
}

/** ASCII-only lower case, as C's tolower in the "C" locale. */
function lower(c: number): number {
  return c >= 0x41 && c <= 0x5a ? c + 0x20 : c;
}

interface MatchState {
  skipLonger: boolean;
}

function matchFrom(
  p: string,
  pi: number,
  s: string,
  si: number,
  nocase: boolean,
  state: MatchState,
  nesting: number,
): boolean {
  if (nesting > MAX_STAR_NESTING) return false;
  const plen = p.length;
  const slen = s.length;
  while (pi < plen && si < slen) {
    const pc = p.charCodeAt(pi);
    if (pc === STAR) {
      while (pi + 1 < plen && p.charCodeAt(pi + 1) === STAR) pi++;
      if (pi + 1 === plen) return true;
      while (si < slen) {
        if (matchFrom(p, pi + 1, s, si, nocase, state, nesting + 1)) return true;
        if (state.skipLonger) return false;
        si++;
      }
      state.skipLonger = true;
      return false;
    }
    if (pc === QUESTION) {
      si++;
    } else if (pc === OPEN) {
      pi++;
      const not = pi < plen && p.charCodeAt(pi) === CARET;
      if (not) pi++;
      const sc = s.charCodeAt(si);
      let match = false;
      for (;;) {
        if (pi >= plen) {
          // Unclosed class: it ends with the pattern (Redis steps back so the loop's pi++ lands on the end).
          pi--;
          break;
        }
        const c = p.charCodeAt(pi);
        if (c === BACKSLASH && plen - pi >= 2) {
          pi++;
          if (p.charCodeAt(pi) === sc) match = true;
        } else if (c === CLOSE) {
          break;
        } else if (plen - pi >= 3 && p.charCodeAt(pi + 1) === DASH) {
          let start = signed(c);
          let end = signed(p.charCodeAt(pi + 2));
          let x = signed(sc);
          if (start > end) [start, end] = [end, start];
          if (nocase) {
            start = lower(start);
            end = lower(end);
            x = lower(x);
          }
          pi += 2;
          if (x >= start && x <= end) match = true;
        } else if (nocase ? lower(c) === lower(sc) : c === sc) {
          match = true;
        }
        pi++;
      }
      if (not) match = !match;
      if (!match) return false;
      si++;
    } else {
      let lit = pc;
      if (pc === BACKSLASH && plen - pi >= 2) {
        pi++;
        lit = p.charCodeAt(pi);
      }
      const sc = s.charCodeAt(si);
      if (nocase ? lower(lit) !== lower(sc) : lit !== sc) return false;
      si++;
    }
    pi++;
    if (si === slen) {
      while (pi < plen && p.charCodeAt(pi) === STAR) pi++;
      break;
    }
  }
  return pi === plen && si === slen;
}

/**
 * True if `subject` matches the glob `pattern`, both in the engine's internal
 * key form (latin1 string of the bytes; plain ASCII strings are already in it).
 */
export function globMatch(pattern: string, subject: string, nocase = false): boolean {
  return matchFrom(pattern, 0, subject, 0, nocase, { skipLonger: false }, 0);
}

/**
 * The literal prefix every match of `pattern` starts with (escapes resolved),
 * and whether the pattern is exactly that prefix followed by one `*` or more
 * (then every key with the prefix matches, and no per-key test is needed).
 * Lets a scan visit only the keys with that prefix.
 */
export function globPrefix(pattern: string): { prefix: string; prefixOnly: boolean } {
  let prefix = '';
  let i = 0;
  const n = pattern.length;
  while (i < n) {
    const c = pattern.charCodeAt(i);
    if (c === STAR || c === QUESTION || c === OPEN) break;
    if (c === BACKSLASH && n - i >= 2) i++;
    prefix += pattern[i];
    i++;
  }
  let j = i;
  while (j < n && pattern.charCodeAt(j) === STAR) j++;
  return { prefix, prefixOnly: j === n && j > i };
}

/** A compiled glob: `test(internalKey)`, and the literal prefix a scan can seek to. */
export interface Glob {
  readonly prefix: string;
  /** Every key with `prefix` matches. */
  readonly prefixOnly: boolean;
  test(key: string): boolean;
}

/** Compiles `pattern` (internal key form) for repeated tests against keys. */
export function compileGlob(pattern: string): Glob {
  const { prefix, prefixOnly } = globPrefix(pattern);
  if (pattern === '*') return { prefix: '', prefixOnly: true, test: () => true };
  if (prefixOnly) return { prefix, prefixOnly, test: (k) => k.startsWith(prefix) };
  return { prefix, prefixOnly, test: (k) => globMatch(pattern, k) };
}
