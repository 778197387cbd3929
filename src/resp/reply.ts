/**
 * What a RESP command handler returns, before it is encoded for the
 * connection's protocol version (writer.ts):
 *
 *   null              null bulk ($-1 / RESP3 _)
 *   number, bigint    integer (:n); a number must be an integer
 *   string            bulk string, UTF-8
 *   Uint8Array        bulk string, those bytes
 *   Reply[]           array (*n)
 *   Simple            simple string (+OK)
 *   RespMap           map (RESP3 %n; RESP2 a flat array of key, value, ...)
 *   RespSet           set (RESP3 ~n; RESP2 an array)
 *   Verbatim          verbatim text (RESP3 =n txt:...; RESP2 a bulk string)
 *   NullArray         null array (*-1 / RESP3 _)
 *
 * Errors are thrown as RespError: its message is the whole error line,
 * prefix included (`ERR ...`, `WRONGTYPE ...`, `NOAUTH ...`).
 */

export class Simple {
  constructor(readonly text: string) {}
}

export class RespMap {
  constructor(readonly entries: readonly (readonly [Reply, Reply])[]) {}
}

export class RespSet {
  constructor(readonly items: readonly Reply[]) {}
}

export class Verbatim {
  constructor(readonly text: string) {}
}

export class NullArray {}

export type Reply =
  | null
  | number
  | bigint
  | string
  | Uint8Array
  | readonly Reply[]
  | Simple
  | RespMap
  | RespSet
  | Verbatim
  | NullArray;

export const OK = new Simple('OK');
export const NULL_ARRAY = new NullArray();

/** An error reply. `message` is the whole line: prefix (ERR, WRONGTYPE, NOAUTH, ...) and text. */
export class RespError extends Error {
  constructor(message: string) {
    // A reply line must not hold a newline (Redis replaces them with blanks too).
    super(message.replace(/[\r\n]/g, ' '));
    this.name = 'RespError';
  }
}

/** `ERR <text>`. */
export function err(text: string): RespError {
  return new RespError(`ERR ${text}`);
}

export const SYNTAX_ERROR = 'ERR syntax error';
export const NOT_AN_INTEGER = 'ERR value is not an integer or out of range';
