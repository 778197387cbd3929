/**
 * How kv-dump shows keys and values: printable UTF-8 as a quoted string,
 * anything else (control bytes, invalid UTF-8) as hex or base64, long ones
 * cut to a preview unless --full.
 */

/** Bytes of a value shown before it is cut (kv-dump --full shows all). */
export const PREVIEW_BYTES = 200;

export type BinaryEncoding = 'hex' | 'base64';

export interface Shown {
  /** The text to print: the string itself, or the hex/base64 of the bytes. */
  text: string;
  encoding: 'utf8' | BinaryEncoding;
  /** Bytes of the whole key or value. */
  bytes: number;
  truncated: boolean;
}

// C0 controls except tab/newline/carriage return, DEL, C1 controls, U+FFFD (invalid UTF-8).
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const UNPRINTABLE = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\ufffd]/;

export function show(buf: Buffer, binary: BinaryEncoding, full: boolean): Shown {
  const truncated = !full && buf.length > PREVIEW_BYTES;
  const text = buf.toString('utf8');
  if (!UNPRINTABLE.test(text)) {
    if (!truncated) return { text, encoding: 'utf8', bytes: buf.length, truncated };
    // Cut on a character boundary: decode the preview and drop a split last character.
    const preview = buf
      .subarray(0, PREVIEW_BYTES)
      .toString('utf8')
      .replace(/\ufffd$/, '');
    return { text: preview, encoding: 'utf8', bytes: buf.length, truncated };
  }
  const part = truncated ? buf.subarray(0, PREVIEW_BYTES) : buf;
  return { text: part.toString(binary), encoding: binary, bytes: buf.length, truncated };
}

/** One value for a text line: "quoted" or hex:/base64: prefixed, with a note when cut. */
export function showText(s: Shown): string {
  const body = s.encoding === 'utf8' ? JSON.stringify(s.text) : `${s.encoding}:${s.text}`;
  return s.truncated ? `${body}... (${s.bytes} bytes)` : body;
}
