/**
 * Compaction manifest format (version 1): the file `COMPACTION`, whose
 * appearance (by rename from `COMPACTION.tmp`) is a compaction's commit point.
 *
 *   byte  size  field
 *   0     4     magic       "SKVC"
 *   4     2     version     u16, MANIFEST_FORMAT_VERSION
 *   6     2     reserved    0
 *   8     4     bodyLength  u32
 *   12    4     bodyCrc     crc32 of the body
 *   16    n     body        UTF-8 JSON {"inputs": [base offsets], "outputs": [base offsets]}
 *
 * The manifest is fsynced before it is renamed into place, so a committed one
 * is always whole: one that fails its checks is disk corruption, and open
 * refuses to guess which set of segments is current (DESIGN.md §3).
 */
import { crc32 } from 'node:zlib';

const MANIFEST_MAGIC = 0x43564b53; // "SKVC" read as u32 LE
export const MANIFEST_FORMAT_VERSION = 1;
export const MANIFEST_HEADER_BYTES = 4 + 2 + 2 + 4 + 4;

export interface Manifest {
  /** Base offsets of the segments replaced. */
  inputs: number[];
  /** Base offsets of the segments that replace them. */
  outputs: number[];
}

export function encodeManifest(m: Manifest): Buffer {
  const body = Buffer.from(JSON.stringify({ inputs: m.inputs, outputs: m.outputs }));
  const buf = Buffer.alloc(MANIFEST_HEADER_BYTES + body.length);
  buf.writeUInt32LE(MANIFEST_MAGIC, 0);
  buf.writeUInt16LE(MANIFEST_FORMAT_VERSION, 4);
  buf.writeUInt32LE(body.length, 8);
  buf.writeUInt32LE(crc32(body), 12);
  body.copy(buf, MANIFEST_HEADER_BYTES);
  return buf;
}

/** The manifest, or a string saying why the bytes are not one. */
export function decodeManifest(buf: Buffer): Manifest | string {
  if (buf.length < MANIFEST_HEADER_BYTES) return 'compaction manifest is truncated';
  if (buf.readUInt32LE(0) !== MANIFEST_MAGIC) return 'compaction manifest has a wrong magic number';
  if (buf.readUInt16LE(4) !== MANIFEST_FORMAT_VERSION) return 'compaction manifest version is not supported';
  const n = buf.readUInt32LE(8);
  if (buf.length !== MANIFEST_HEADER_BYTES + n) return 'compaction manifest length does not match its header';
  const body = buf.subarray(MANIFEST_HEADER_BYTES);
  if (buf.readUInt32LE(12) !== crc32(body)) return 'compaction manifest fails its CRC';
  try {
    const parsed = JSON.parse(body.toString('utf8')) as Partial<Manifest>;
    const ok = (a: unknown): a is number[] =>
      Array.isArray(a) && a.every((x) => Number.isSafeInteger(x) && (x as number) >= 0);
    if (!ok(parsed.inputs) || !ok(parsed.outputs)) return 'compaction manifest lists invalid offsets';
    return { inputs: parsed.inputs, outputs: parsed.outputs };
  } catch {
    return 'compaction manifest body is not JSON';
  }
}
