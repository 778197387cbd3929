/**
 * The input of `kv-cli --pipe`: commands read from a byte stream, either one
 * per line with the prompt's quoting (blank lines and lines starting with #
 * skipped, \r\n accepted), or RESP arrays of bulk strings as redis-cli --pipe
 * takes them (`*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n`). The format is
 * chosen by the first byte: `*` means RESP.
 */
import { QuoteError, splitArgBytes } from './quoting.js';

/** A command, or a line that could not be read, with its position for error messages. */
export type PipeItem = { line: number; args: Buffer[] } | { line: number; error: string };

/** Longest RESP bulk string accepted, bytes (a value larger than any frame the server takes). */
const MAX_RESP_BULK_BYTES = 512 * 1024 * 1024;

const NL = 0x0a;
const CR = 0x0d;

/** Splits a stream into lines, yielding each line's bytes (without \n or \r\n). */
async function* lines(chunks: AsyncIterable<Buffer>, first: Buffer): AsyncGenerator<Buffer> {
  let pending = first;
  const flush = function* (final: boolean): Generator<Buffer> {
    let start = 0;
    for (;;) {
      const nl = pending.indexOf(NL, start);
      if (nl < 0) break;
      const end = nl > start && pending[nl - 1] === CR ? nl - 1 : nl;
      yield pending.subarray(start, end);
      start = nl + 1;
    }
    pending = pending.subarray(start);
    if (final && pending.length > 0) {
      yield pending;
      pending = Buffer.alloc(0);
    }
  };
  yield* flush(false);
  for await (const chunk of chunks) {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    yield* flush(false);
  }
  yield* flush(true);
}

class RespError extends Error {}

/** Parses RESP arrays of bulk strings; returns undefined when `buf` holds no whole command yet. */
function parseResp(buf: Buffer, at: number): { args: Buffer[]; next: number } | undefined {
  const readLine = (pos: number): { text: string; next: number } | undefined => {
    const nl = buf.indexOf('\r\n', pos);
    return nl < 0 ? undefined : { text: buf.toString('latin1', pos, nl), next: nl + 2 };
  };
  const head = readLine(at);
  if (!head) return undefined;
  if (head.text[0] !== '*') throw new RespError(`expected '*' (an array), got ${JSON.stringify(head.text)}`);
  const n = Number(head.text.slice(1));
  if (!Number.isSafeInteger(n) || n < 1) throw new RespError(`bad array length ${JSON.stringify(head.text)}`);
  const args: Buffer[] = [];
  let pos = head.next;
  for (let i = 0; i < n; i++) {
    const len = readLine(pos);
    if (!len) return undefined;
    if (len.text[0] !== '$')
      throw new RespError(`expected '$' (a bulk string), got ${JSON.stringify(len.text)}`);
    const size = Number(len.text.slice(1));
    if (!Number.isSafeInteger(size) || size < 0 || size > MAX_RESP_BULK_BYTES) {
      throw new RespError(`bad bulk length ${JSON.stringify(len.text)}`);
    }
    if (len.next + size + 2 > buf.length) return undefined;
    if (buf[len.next + size] !== CR || buf[len.next + size + 1] !== NL) {
      throw new RespError(`bulk string of ${size} bytes not followed by \\r\\n`);
    }
    args.push(Buffer.from(buf.subarray(len.next, len.next + size)));
    pos = len.next + size + 2;
  }
  return { args, next: pos };
}

async function* respCommands(chunks: AsyncIterable<Buffer>, first: Buffer): AsyncGenerator<PipeItem> {
  let buf = first;
  let count = 0;
  const drain = function* (): Generator<PipeItem> {
    let at = 0;
    for (;;) {
      while (at < buf.length && (buf[at] === CR || buf[at] === NL)) at++;
      const cmd = parseResp(buf, at);
      if (!cmd) break;
      yield { line: ++count, args: cmd.args };
      at = cmd.next;
    }
    buf = buf.subarray(at);
  };
  try {
    yield* drain();
    for await (const chunk of chunks) {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      yield* drain();
    }
    if (buf.length > 0) yield { line: count + 1, error: 'the input ends inside a RESP command' };
  } catch (err) {
    if (!(err instanceof RespError)) throw err;
    yield { line: count + 1, error: `RESP: ${err.message}; stopped reading` };
  }
}

/** The commands of a stream, in order; `line` is the line number (or the command number in RESP). */
export async function* readCommands(
  stream: AsyncIterable<Buffer | string> | Iterable<Buffer | string>,
): AsyncGenerator<PipeItem> {
  const it = (async function* () {
    for await (const c of stream) yield typeof c === 'string' ? Buffer.from(c, 'utf8') : c;
  })();
  // Find the first meaningful byte to pick the format.
  let first: Buffer = Buffer.alloc(0);
  for (;;) {
    const r = await it.next();
    if (r.done) break;
    first = first.length === 0 ? r.value : Buffer.concat([first, r.value]);
    if (first.some((b) => b !== CR && b !== NL && b !== 0x20 && b !== 0x09)) break;
  }
  const startByte = first.find((b) => b !== CR && b !== NL && b !== 0x20 && b !== 0x09);
  if (startByte === 0x2a) {
    yield* respCommands(it, first);
    return;
  }
  let n = 0;
  for await (const line of lines(it, first)) {
    n++;
    let i = 0;
    while (i < line.length && (line[i] === 0x20 || line[i] === 0x09)) i++;
    if (i === line.length || line[i] === 0x23) continue; // blank or # comment
    try {
      yield { line: n, args: splitArgBytes(line) };
    } catch (err) {
      if (!(err instanceof QuoteError)) throw err;
      yield { line: n, error: err.message };
    }
  }
}
