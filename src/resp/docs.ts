/**
 * COMMAND INFO and COMMAND DOCS replies built from the command table, in
 * Redis 7's shapes (redis-cli builds its hints from COMMAND DOCS; cluster
 * clients read key positions from COMMAND INFO).
 *
 * A command's arguments are written once, as the synopsis Redis's docs show
 * (`key value [NX|XX] [EX seconds|PX milliseconds]`), and parsed here into
 * COMMAND DOCS argument trees: `[...]` optional, `(...)` a group, `a|b` one
 * of, `...` after an item repeats it, an UPPERCASE word is a token (alone a
 * pure-token, before a lowercase word that argument's token), a lowercase
 * word an argument whose type follows from its name.
 */
import type { RespCommand } from './command.js';
import { type Reply, RespMap, RespSet, Simple } from './reply.js';

interface DocArg {
  name: string;
  type: string;
  token?: string;
  optional?: boolean;
  multiple?: boolean;
  keySpec?: number;
  arguments?: DocArg[];
}

const INTEGER_NAMES = new Set([
  'seconds',
  'milliseconds',
  'count',
  'increment',
  'decrement',
  'index',
  'numreplicas',
  'timeout',
  'cursor',
  'protover',
  'client-id',
]);

function typeOf(name: string): string {
  if (name === 'key') return 'key';
  if (INTEGER_NAMES.has(name)) return 'integer';
  if (name.startsWith('unix-time')) return 'unix-time';
  if (name === 'pattern') return 'pattern';
  return 'string';
}

const isToken = (w: string) => /^[A-Z][A-Z0-9-]*$/.test(w);

class SynopsisParser {
  private i = 0;
  constructor(private readonly t: string[]) {}

  /** Alternatives separated by `|` until `]`, `)` or the end. */
  alt(): DocArg[] {
    const seqs = [this.seq()];
    while (this.t[this.i] === '|') {
      this.i++;
      seqs.push(this.seq());
    }
    if (seqs.length === 1) return seqs[0]!;
    const options = seqs.map((s) => group(s));
    return [{ name: options.map((o) => o.name).join('-'), type: 'oneof', arguments: options }];
  }

  private seq(): DocArg[] {
    const items: DocArg[] = [];
    for (;;) {
      const w = this.t[this.i];
      if (w === undefined || w === ']' || w === ')' || w === '|') break;
      this.i++;
      let arg: DocArg;
      if (w === '[' || w === '(') {
        arg = group(this.alt());
        this.i++; // the closing bracket
        if (w === '[') arg = { ...arg, optional: true };
      } else if (isToken(w) && this.t[this.i] !== undefined && /^[a-z]/.test(this.t[this.i]!)) {
        const name = this.t[this.i++]!;
        arg = { name, type: typeOf(name), token: w };
      } else if (isToken(w)) {
        arg = { name: w.toLowerCase(), type: 'pure-token', token: w };
      } else {
        arg = { name: w, type: typeOf(w) };
      }
      if (this.t[this.i] === '...') {
        this.i++;
        arg = { ...arg, multiple: true };
      }
      items.push(arg);
    }
    return items;
  }
}

function group(items: DocArg[]): DocArg {
  if (items.length === 1) return items[0]!;
  return { name: items.map((a) => a.name).join('-'), type: 'block', arguments: items };
}

/** The argument tree of a synopsis. */
export function parseSynopsis(synopsis: string): DocArg[] {
  const tokens = synopsis.match(/\.\.\.|[[\]()|]|[^\s[\]()|]+/g) ?? [];
  const args = new SynopsisParser(tokens).alt();
  let keySpec = 0;
  const number = (a: DocArg): void => {
    if (a.type === 'key') a.keySpec = keySpec++;
    for (const sub of a.arguments ?? []) number(sub);
  };
  for (const a of args) number(a);
  return args;
}

function argReply(a: DocArg): RespMap {
  const entries: [Reply, Reply][] = [
    ['name', a.name],
    ['type', a.type],
  ];
  if (a.keySpec !== undefined) entries.push(['key_spec_index', a.keySpec]);
  if (a.token !== undefined) entries.push(['token', a.token]);
  const flags = [...(a.optional ? ['optional'] : []), ...(a.multiple ? ['multiple'] : [])];
  if (flags.length > 0) entries.push(['flags', new RespSet(flags.map((f) => new Simple(f)))]);
  if (a.arguments) entries.push(['arguments', a.arguments.map(argReply)]);
  return new RespMap(entries);
}

/** One entry of COMMAND DOCS. */
export function docsReply(c: RespCommand): RespMap {
  const entries: [Reply, Reply][] = [
    ['summary', c.summary],
    ['since', c.since],
    ['group', c.group],
    ['complexity', c.complexity],
  ];
  if (c.synopsis !== '') entries.push(['arguments', parseSynopsis(c.synopsis).map(argReply)]);
  if (c.subcommands) {
    entries.push(['subcommands', new RespMap(c.subcommands.map((sc) => [sc.name, docsReply(sc)] as const))]);
  }
  return new RespMap(entries);
}

/** One entry of COMMAND INFO (and of COMMAND). */
export function infoReply(c: RespCommand): Reply {
  return [
    c.name,
    c.arity,
    new RespSet(c.flags.map((f) => new Simple(f))),
    c.keys[0],
    c.keys[1],
    c.keys[2],
    new RespSet(c.acl.map((a) => new Simple(`@${a}`))),
    [],
    [],
    (c.subcommands ?? []).map(infoReply),
  ];
}
