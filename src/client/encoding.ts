/**
 * Value encodings of the client SDK, in the spirit of level's: how a value
 * given to `set` becomes the bytes stored, and how stored bytes come back
 * from `get`. The wire always carries bytes (MessagePack bin).
 */

import { KvError } from '../errors.js';
import { packr, unpackr } from '../protocol/frame.js';

export type ValueEncoding = 'utf8' | 'buffer' | 'json' | 'msgpack';

export interface Codec<V> {
  encode(value: V): Uint8Array;
  /** `bytes` is a view of a received frame: a codec that returns it (or part of it) must decide whether to copy. */
  decode(bytes: Buffer): V;
}

function bytesOf(value: unknown, encoding: string): Uint8Array {
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (value instanceof Uint8Array) return value;
  throw new KvError(
    'INVALID_VALUE',
    `with valueEncoding '${encoding}' a value must be a string or a Buffer, got ${typeof value}`,
  );
}

const utf8: Codec<string> = {
  encode: (v) => bytesOf(v, 'utf8'),
  decode: (b) => b.toString('utf8'),
};

/** Values below this size are copied out of the received frame, so a kept value does not pin a whole socket chunk. */
const COPY_VALUES_BELOW_BYTES = 4096;

const buffer: Codec<Buffer> = {
  encode: (v) => bytesOf(v, 'buffer'),
  decode: (b) => (b.length < COPY_VALUES_BELOW_BYTES ? Buffer.from(b) : b),
};

const json: Codec<unknown> = {
  encode: (v) => {
    const text = JSON.stringify(v);
    if (text === undefined)
      throw new KvError('INVALID_VALUE', `with valueEncoding 'json' ${typeof v} cannot be stored`);
    return Buffer.from(text, 'utf8');
  },
  decode: (b) => {
    try {
      return JSON.parse(b.toString('utf8'));
    } catch (err) {
      throw new KvError(
        'INVALID_VALUE',
        "the stored value is not JSON; read it with valueEncoding 'buffer'",
        {
          cause: err,
        },
      );
    }
  },
};

const msgpack: Codec<unknown> = {
  encode: (v) => Buffer.from(packr.pack(v)),
  decode: (b) => {
    try {
      return unpackr.unpack(b);
    } catch (err) {
      throw new KvError(
        'INVALID_VALUE',
        "the stored value is not MessagePack; read it with valueEncoding 'buffer'",
        {
          cause: err,
        },
      );
    }
  },
};

const CODECS: Record<ValueEncoding, Codec<unknown>> = {
  utf8: utf8 as Codec<unknown>,
  buffer: buffer as Codec<unknown>,
  json,
  msgpack,
};

export function codecFor(encoding: ValueEncoding): Codec<unknown> {
  const codec = CODECS[encoding];
  if (!codec) {
    throw new KvError(
      'INVALID_ARGUMENT',
      `valueEncoding must be one of ${Object.keys(CODECS).join(', ')}, got ${String(encoding)}`,
    );
  }
  return codec;
}
