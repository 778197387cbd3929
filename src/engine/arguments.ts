/**
 * Runtime checks of the public API's arguments, shared by the embedded
 * engine (api.ts) and the client SDK: plain JavaScript callers get no help
 * from the types, so an unknown option or a wrong argument shape throws
 * INVALID_ARGUMENT naming it, instead of being silently ignored.
 *
 * Redis's (and ioredis's / node-redis's) names are accepted where they mean
 * the same thing: `ex`/`EX` (seconds), `px`/`PX` (ms), `nx`/`NX`, `xx`/`XX`
 * beside segkv's `ttlMs`, `ifAbsent`, `ifPresent`; and del/mget/exists take
 * keys variadically or as an array, as ioredis does.
 */
import { KvError } from '../errors.js';
import type { Key } from './keys.js';
import { MAX_TTL_MS } from './limits.js';

/** Options of `set` (engine and SDK). Only one TTL field and only one of the conditions at a time. */
export interface SetOptions {
  /** Time to live in milliseconds (> 0); the key reads as absent once it has passed. Default: no expiry (a set removes any earlier one). */
  ttlMs?: number;
  /** Time to live in seconds (> 0), as Redis's `SET ... EX`. */
  ex?: number;
  /** Same as `ex` (node-redis spelling). */
  EX?: number;
  /** Time to live in milliseconds (> 0), as Redis's `SET ... PX`; same as `ttlMs`. */
  px?: number;
  /** Same as `px` (node-redis spelling). */
  PX?: number;
  /** Only write if the key does not exist (Redis NX). Default false. */
  ifAbsent?: boolean;
  /** Same as `ifAbsent` (Redis NX). */
  nx?: boolean;
  /** Same as `ifAbsent` (node-redis spelling). */
  NX?: boolean;
  /** Only write if the key exists (Redis XX). Default false. */
  ifPresent?: boolean;
  /** Same as `ifPresent` (Redis XX). */
  xx?: boolean;
  /** Same as `ifPresent` (node-redis spelling). */
  XX?: boolean;
}

/** `SetOptions` reduced to one field per meaning. */
export interface ResolvedSetOptions {
  ttlMs: number | undefined;
  ifAbsent: boolean;
  ifPresent: boolean;
}

const TTL_MS_FIELDS = ['ttlMs', 'px', 'PX'] as const;
const TTL_S_FIELDS = ['ex', 'EX'] as const;
const IF_ABSENT_FIELDS = ['ifAbsent', 'nx', 'NX'] as const;
const IF_PRESENT_FIELDS = ['ifPresent', 'xx', 'XX'] as const;
const SET_OPTION_FIELDS: readonly string[] = [
  ...TTL_MS_FIELDS,
  ...TTL_S_FIELDS,
  ...IF_ABSENT_FIELDS,
  ...IF_PRESENT_FIELDS,
];

/** Redis's SET tokens (`set(k, v, 'EX', 10, 'NX')`, ioredis style), upper-cased, → the option they set. */
const SET_TOKENS: Record<string, { field: keyof SetOptions; takesNumber: boolean }> = {
  EX: { field: 'ex', takesNumber: true },
  PX: { field: 'px', takesNumber: true },
  NX: { field: 'nx', takesNumber: false },
  XX: { field: 'xx', takesNumber: false },
};

export function invalid(message: string): KvError {
  return new KvError('INVALID_ARGUMENT', message);
}

/** `v` named for an error message: its type, and its value when short (a string, a number). */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Uint8Array) return 'a Buffer';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (typeof v === 'number') return `the number ${v}`;
  return typeof v;
}

/**
 * `options` as a plain object whose every own field is in `allowed`, or
 * undefined when absent. Throws INVALID_ARGUMENT naming the first unknown
 * field (and the allowed ones) or the wrong shape.
 */
export function checkOptions<T extends object>(
  where: string,
  options: unknown,
  allowed: readonly string[],
): Partial<T> | undefined {
  if (options === undefined) return undefined;
  if (
    options === null ||
    typeof options !== 'object' ||
    Array.isArray(options) ||
    options instanceof Uint8Array
  ) {
    throw invalid(`${where}: options must be an object, got ${describe(options)}`);
  }
  for (const name of Object.keys(options)) {
    if (!allowed.includes(name)) {
      throw invalid(`${where}: unknown option '${name}'; the options are ${allowed.join(', ')}`);
    }
  }
  return options as Partial<T>;
}

function optBoolean(where: string, o: Record<string, unknown>, name: string): boolean {
  const v = o[name];
  if (v === undefined) return false;
  if (typeof v !== 'boolean') throw invalid(`${where}: option ${name} must be a boolean, got ${describe(v)}`);
  return v;
}

/** A positive integer count of `unit` (a TTL), or throws INVALID_ARGUMENT. */
export function positiveInteger(where: string, name: string, v: unknown, unit: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
    throw invalid(`${where}: ${name} must be a positive integer number of ${unit}, got ${describe(v)}`);
  }
  return v;
}

/** An integer count of `unit`, any sign (EXPIRE: ≤ 0 deletes), or throws INVALID_ARGUMENT. */
export function integer(where: string, name: string, v: unknown, unit: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) {
    throw invalid(`${where}: ${name} must be an integer number of ${unit}, got ${describe(v)}`);
  }
  return v;
}

/** Seconds → ms, refusing a result past Number.MAX_SAFE_INTEGER. */
export function secondsToMs(where: string, seconds: number): number {
  const ms = seconds * 1000;
  if (!Number.isSafeInteger(ms)) {
    throw invalid(`${where}: ${seconds} seconds is out of range (at most ${MAX_TTL_MS} ms)`);
  }
  return ms;
}

/** A TTL in ms within MAX_TTL_MS (the largest expiry the log keeps exactly), else INVALID_ARGUMENT naming the limit. */
export function ttlWithinLimit(where: string, name: string, ms: number): number {
  if (ms > MAX_TTL_MS) {
    throw invalid(
      `${where}: ${name} must be at most ${MAX_TTL_MS} ms (2^52, about 142,000 years: the largest expiry the log keeps exactly), got ${ms} ms`,
    );
  }
  return ms;
}

/** The options of a `set`: checked, aliases folded, conflicts refused. */
export function resolveSetOptions(where: string, options: unknown): ResolvedSetOptions {
  const o = checkOptions<SetOptions>(where, options, SET_OPTION_FIELDS) as
    | Record<string, unknown>
    | undefined;
  if (o === undefined) return { ttlMs: undefined, ifAbsent: false, ifPresent: false };
  const given = (fields: readonly string[]) => fields.filter((f) => o[f] !== undefined);
  const ttlFields = [...given(TTL_MS_FIELDS), ...given(TTL_S_FIELDS)];
  if (ttlFields.length > 1)
    throw invalid(`${where}: options ${ttlFields.join(' and ')} both set a TTL; pass one`);
  let ttlMs: number | undefined;
  const ttlField = ttlFields[0];
  if (ttlField !== undefined) {
    const seconds = (TTL_S_FIELDS as readonly string[]).includes(ttlField);
    const n = positiveInteger(where, ttlField, o[ttlField], seconds ? 'seconds' : 'milliseconds');
    ttlMs = ttlWithinLimit(where, ttlField, seconds ? secondsToMs(where, n) : n);
  }
  let ifAbsent = false;
  for (const f of IF_ABSENT_FIELDS) ifAbsent = optBoolean(where, o, f) || ifAbsent;
  let ifPresent = false;
  for (const f of IF_PRESENT_FIELDS) ifPresent = optBoolean(where, o, f) || ifPresent;
  if (ifAbsent && ifPresent) {
    throw invalid(`${where}: ifAbsent (nx) and ifPresent (xx) exclude each other`);
  }
  return { ttlMs, ifAbsent, ifPresent };
}

/**
 * The options of a `set` given after the value: nothing, one options object,
 * or Redis's tokens as ioredis takes them (`'EX', 10, 'NX'`).
 */
export function setOptionsFrom(where: string, rest: readonly unknown[]): ResolvedSetOptions {
  if (rest.length === 0) return resolveSetOptions(where, undefined);
  if (rest.length === 1 && typeof rest[0] !== 'string') return resolveSetOptions(where, rest[0]);
  const o: Record<string, unknown> = {};
  for (let i = 0; i < rest.length; i++) {
    const word = rest[i];
    const token = typeof word === 'string' ? SET_TOKENS[word.toUpperCase()] : undefined;
    if (token === undefined) {
      throw invalid(
        `${where}: expected an options object or Redis's tokens EX seconds | PX ms | NX | XX, got ${describe(word)}`,
      );
    }
    if (o[token.field] !== undefined) throw invalid(`${where}: ${String(word)} given twice`);
    if (!token.takesNumber) o[token.field] = true;
    else if (i + 1 >= rest.length) throw invalid(`${where}: ${String(word)} needs a number after it`);
    else o[token.field] = rest[++i];
  }
  return resolveSetOptions(where, o);
}

function isKey(k: unknown): k is Key {
  return typeof k === 'string' || k instanceof Uint8Array;
}

/**
 * The keys of del/mget/exists, as ioredis takes them: `('a', 'b')`,
 * `(['a', 'b'])`, or a mix (arrays are flattened one level). A lone string
 * is one key, never split into characters. At least one key.
 */
export function keyList(where: string, args: readonly unknown[]): Key[] {
  const keys: Key[] = [];
  for (const a of args) {
    if (isKey(a)) keys.push(a);
    else if (Array.isArray(a)) {
      for (const k of a) {
        if (!isKey(k))
          throw new KvError(
            'INVALID_KEY',
            `${where}: a key must be a string or a Buffer, got ${describe(k)}`,
          );
        keys.push(k);
      }
    } else
      throw new KvError('INVALID_KEY', `${where}: a key must be a string or a Buffer, got ${describe(a)}`);
  }
  if (keys.length === 0) throw invalid(`${where}: needs at least one key`);
  return keys;
}

/** One key argument: a string or a Buffer (emptiness and length are checked where it is used). */
export function checkKey(where: string, key: unknown): Key {
  if (!isKey(key))
    throw new KvError('INVALID_KEY', `${where}: a key must be a string or a Buffer, got ${describe(key)}`);
  return key;
}

/** A key-like option (a scan prefix, bound or pattern): a string or a Buffer, else INVALID_ARGUMENT. */
export function keyOption(where: string, name: string, v: unknown): Key {
  if (!isKey(v)) throw invalid(`${where}: option ${name} must be a string or a Buffer, got ${describe(v)}`);
  return v;
}

/** Refuses Redis 7's EXPIRE flags (NX, XX, GT, LT), which segkv does not have, instead of ignoring them. */
export function noFlags(where: string, flags: readonly unknown[]): void {
  if (flags.length > 0) {
    throw invalid(
      `${where}: takes (key, time) only; Redis's NX/XX/GT/LT flags are not supported, got ${describe(flags[0])}`,
    );
  }
}

/**
 * mset's arguments as keys and values in turn (neither checked yet): from an
 * object, a Map or an iterable of [key, value] pairs, or given so already, as
 * ioredis takes them (`mset('k1', 'v1', 'k2', 'v2')`). The client and the
 * cluster client both read mset's arguments through this.
 */
export function msetKeysAndValues(input: readonly unknown[]): unknown[] {
  const first = input[0];
  let out: unknown[];
  if (input.length === 1 && typeof first === 'object' && first !== null && !(first instanceof Uint8Array)) {
    out = [];
    const pairs: Iterable<unknown> =
      Symbol.iterator in first ? (first as Iterable<unknown>) : Object.entries(first);
    for (const pair of pairs) {
      if (!Array.isArray(pair) || pair.length !== 2)
        throw invalid('mset: each entry must be a [key, value] pair');
      out.push(pair[0], pair[1]);
    }
  } else {
    if (input.length % 2 !== 0) {
      throw invalid('mset: takes an object, a Map, [key, value] pairs, or keys and values in turn');
    }
    out = [...input];
  }
  if (out.length === 0) throw invalid('mset: needs at least one key and value');
  return out;
}

/** Runs `fn`; an argument error it throws becomes a rejection, as a promise-returning method's errors should. */
export function rejecting<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return fn();
  } catch (err) {
    return Promise.reject(err);
  }
}

/** A method's parameter names, for the message; the count is its most arguments. */
export type ParamNames = readonly string[];

/**
 * Wraps the listed methods of `proto` so that a call with more arguments than
 * the method takes is refused with INVALID_ARGUMENT instead of the extra being
 * ignored: `get('a', 'b')` (as if get took several keys) or `close(callback)`
 * would otherwise do something other than the caller meant. Methods in
 * `promised` reject, as their other argument errors do; those in `sync` throw.
 */
export function limitArity<T extends object>(
  proto: T,
  promised: Partial<Record<keyof T & string, ParamNames>>,
  sync: Partial<Record<keyof T & string, ParamNames>> = {},
): void {
  const wrap = (name: string, params: ParamNames, rejects: boolean): void => {
    const target = proto as Record<string, unknown>;
    const method = target[name];
    if (typeof method !== 'function') throw new Error(`limitArity: ${name} is not a method`);
    const max = params.length;
    target[name] = {
      [name](this: unknown) {
        // `arguments` counts the call's arguments without allocating a rest array on this hot path.
        // biome-ignore lint/complexity/noArguments: see above
        const args = arguments;
        if (args.length <= max) return Reflect.apply(method, this, args);
        const takes = max === 0 ? 'no arguments' : `(${params.join(', ')})`;
        const err = invalid(
          `${name} takes ${takes}, got ${args.length} argument${args.length === 1 ? '' : 's'}`,
        );
        if (rejects) return Promise.reject(err);
        throw err;
      },
    }[name];
  };
  for (const [name, params] of Object.entries(promised)) wrap(name, params as ParamNames, true);
  for (const [name, params] of Object.entries(sync)) wrap(name, params as ParamNames, false);
}
