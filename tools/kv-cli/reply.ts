/**
 * What kv-cli prints for a reply, in its three output modes:
 *
 *   human (default)  redis-cli's look: OK, "value", (nil), (integer) 3,
 *                    numbered lists `1) "a"` (nested ones indented),
 *                    maps `1# "key" => value`, INFO as `# Section` + key:value
 *                    lines, errors `(error) CODE message`.
 *   raw (--raw)      bare bytes for scripts: values as stored, integers as
 *                    digits, nil as an empty line, one list item per line.
 *   json (--json)    one JSON value per reply; bytes that are not UTF-8 as
 *                    {"base64": "..."}; errors as {"error": {code, message}}.
 *
 * Unlike redis-cli, the mode never switches by itself when stdout is a pipe:
 * kv-cli's output is the same in a terminal and in a script unless --raw or
 * --json is given (DESIGN.md §6 fixes `OK`, `(nil)`, `(integer) N`).
 */
import { quote } from './quoting.js';

export type Reply =
  /** A short status word: OK, PONG. */
  | { type: 'status'; text: string }
  | { type: 'bulk'; value: Buffer }
  | { type: 'nil' }
  | { type: 'integer'; value: number }
  | { type: 'array'; items: Reply[]; json?: unknown }
  | { type: 'map'; entries: [string, Reply][] }
  /** INFO: sections of key → value, nested objects flattened with dots. */
  | { type: 'info'; sections: Record<string, unknown> }
  | { type: 'error'; code: string; message: string };

export type OutputMode = 'human' | 'raw' | 'json';

export const OK: Reply = { type: 'status', text: 'OK' };
export const NIL: Reply = { type: 'nil' };

export function bulk(value: Buffer | string): Reply {
  return { type: 'bulk', value: typeof value === 'string' ? Buffer.from(value, 'utf8') : value };
}

export function integer(value: number): Reply {
  return { type: 'integer', value };
}

/** A map reply from a plain object (HELLO, COMPACT): numbers as integers, strings as bulk. */
export function mapOf(o: Record<string, unknown>): Reply {
  return { type: 'map', entries: Object.entries(o).map(([k, v]) => [k, fromPlain(v)]) };
}

function fromPlain(v: unknown): Reply {
  if (v === null || v === undefined) return NIL;
  if (typeof v === 'number') return integer(v);
  if (typeof v === 'boolean') return { type: 'status', text: v ? 'true' : 'false' };
  if (typeof v === 'string') return bulk(v);
  if (Buffer.isBuffer(v)) return bulk(v);
  if (v instanceof Uint8Array) return bulk(Buffer.from(v));
  if (Array.isArray(v)) return { type: 'array', items: v.map(fromPlain) };
  if (typeof v === 'object') return mapOf(v as Record<string, unknown>);
  return bulk(String(v));
}

// ---- human ----------------------------------------------------------------

/** Indents every line after the first by `width` spaces. */
function hang(text: string, width: number): string {
  return text.replaceAll('\n', `\n${' '.repeat(width)}`);
}

function infoValue(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return Buffer.from(v).toString('utf8');
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

function infoLines(prefix: string, o: Record<string, unknown>, out: string[]): void {
  for (const [k, v] of Object.entries(o)) {
    const name = prefix === '' ? k : `${prefix}.${k}`;
    if (typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array)) {
      infoLines(name, v as Record<string, unknown>, out);
    } else out.push(`${name}:${infoValue(v)}`);
  }
}

/** INFO as redis-cli shows it: `# Section` headers and key:value lines. */
export function infoText(sections: Record<string, unknown>): string {
  const blocks: string[] = [];
  for (const [name, body] of Object.entries(sections)) {
    const lines = [`# ${name.charAt(0).toUpperCase()}${name.slice(1)}`];
    if (typeof body === 'object' && body !== null) infoLines('', body as Record<string, unknown>, lines);
    else lines.push(infoValue(body));
    blocks.push(lines.join('\n'));
  }
  return blocks.join('\n\n');
}

/** The human form, without the final newline. */
export function formatHuman(r: Reply): string {
  switch (r.type) {
    case 'status':
      return r.text;
    case 'bulk':
      return quote(r.value);
    case 'nil':
      return '(nil)';
    case 'integer':
      return `(integer) ${r.value}`;
    case 'error':
      return `(error) ${r.code} ${r.message}`;
    case 'info':
      return infoText(r.sections);
    case 'array': {
      if (r.items.length === 0) return '(empty array)';
      const width = String(r.items.length).length;
      return r.items
        .map((item, i) => {
          const label = `${String(i + 1).padStart(width)}) `;
          return label + hang(formatHuman(item), label.length);
        })
        .join('\n');
    }
    case 'map': {
      if (r.entries.length === 0) return '(empty hash)';
      const width = String(r.entries.length).length;
      return r.entries
        .map(([k, v], i) => {
          const label = `${String(i + 1).padStart(width)}# ${quote(Buffer.from(k, 'utf8'))} => `;
          return label + hang(formatHuman(v), label.length);
        })
        .join('\n');
    }
  }
}

// ---- raw ------------------------------------------------------------------

function rawParts(r: Reply, out: Buffer[]): void {
  switch (r.type) {
    case 'status':
      out.push(Buffer.from(r.text));
      return;
    case 'bulk':
      out.push(r.value);
      return;
    case 'nil':
      out.push(Buffer.alloc(0));
      return;
    case 'integer':
      out.push(Buffer.from(String(r.value)));
      return;
    case 'error':
      out.push(Buffer.from(`${r.code} ${r.message}`));
      return;
    case 'info':
      out.push(Buffer.from(infoText(r.sections)));
      return;
    case 'array':
      for (const item of r.items) rawParts(item, out);
      return;
    case 'map':
      for (const [k, v] of r.entries) {
        out.push(Buffer.from(k));
        rawParts(v, out);
      }
      return;
  }
}

/** The raw form: one line per scalar, bytes as they are, without the final newline. */
export function formatRaw(r: Reply): Buffer {
  const parts: Buffer[] = [];
  rawParts(r, parts);
  const joined: Buffer[] = [];
  parts.forEach((p, i) => {
    if (i > 0) joined.push(Buffer.from('\n'));
    joined.push(p);
  });
  return Buffer.concat(joined);
}

// ---- json -----------------------------------------------------------------

function jsonBytes(b: Buffer): unknown {
  const s = b.toString('utf8');
  return Buffer.byteLength(s, 'utf8') === b.length && Buffer.from(s, 'utf8').equals(b)
    ? s
    : { base64: b.toString('base64') };
}

function plainJson(v: unknown): unknown {
  if (Buffer.isBuffer(v)) return jsonBytes(v);
  if (v instanceof Uint8Array) return jsonBytes(Buffer.from(v));
  if (Array.isArray(v)) return v.map(plainJson);
  if (typeof v === 'object' && v !== null) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plainJson(x)]));
  }
  return v;
}

/** The reply as a JSON-ready value. */
export function toJson(r: Reply): unknown {
  switch (r.type) {
    case 'status':
      return r.text === 'true' ? true : r.text === 'false' ? false : r.text;
    case 'bulk':
      return jsonBytes(r.value);
    case 'nil':
      return null;
    case 'integer':
      return r.value;
    case 'error':
      return { error: { code: r.code, message: r.message } };
    case 'info':
      return plainJson(r.sections);
    case 'array':
      return r.json !== undefined ? plainJson(r.json) : r.items.map(toJson);
    case 'map':
      return Object.fromEntries(r.entries.map(([k, v]) => [k, toJson(v)]));
  }
}

/** The reply in `mode`, with its final newline, ready for stdout. */
export function render(r: Reply, mode: OutputMode): Buffer {
  if (mode === 'raw') return Buffer.concat([formatRaw(r), Buffer.from('\n')]);
  if (mode === 'json') return Buffer.from(`${JSON.stringify(toJson(r))}\n`);
  return Buffer.from(`${formatHuman(r)}\n`);
}
