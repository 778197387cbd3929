/**
 * Hash slots, as Redis Cluster defines them: 16,384 slots; a key's slot is the
 * CRC16 (XMODEM) of its bytes mod 16,384, or of its hash tag — the bytes
 * between the first `{` and the next `}`, when there are any — so that
 * `{user:1}:name` and `{user:1}:mail` share a slot. cluster-key-slot computes
 * it (the function ioredis uses), so a segkv key lands in the slot a Redis
 * Cluster client expects.
 */
import calculateSlot from 'cluster-key-slot';
import { KvError } from '../errors.js';

/** Number of hash slots (Redis Cluster's). */
export const SLOT_COUNT = 16_384;

/** An inclusive range of slots, `[first, last]`. */
export type SlotRange = readonly [first: number, last: number];

/** The slot of a key (a string is taken as its UTF-8 bytes). */
export function keySlot(key: string | Uint8Array): number {
  return calculateSlot(
    typeof key === 'string' ? key : Buffer.from(key.buffer, key.byteOffset, key.byteLength),
  );
}

/**
 * The slot all of `keys` share, or -1 when they span several (the CROSSSLOT
 * case of a multi-key command).
 */
export function commonSlot(keys: readonly (string | Uint8Array)[]): number {
  if (keys.length === 0) return -1;
  const first = keySlot(keys[0]!);
  for (let i = 1; i < keys.length; i++) if (keySlot(keys[i]!) !== first) return -1;
  return first;
}

/**
 * Splits the slots evenly into `shards` contiguous ranges, the first ones one
 * slot larger when the division is not exact (as `redis-cli --cluster create`).
 */
export function splitSlots(shards: number): SlotRange[] {
  if (!Number.isInteger(shards) || shards < 1 || shards > SLOT_COUNT)
    throw new KvError(
      'INVALID_ARGUMENT',
      `shard count must be an integer 1..${SLOT_COUNT}, got ${String(shards)}`,
    );
  const ranges: SlotRange[] = [];
  const base = Math.floor(SLOT_COUNT / shards);
  const extra = SLOT_COUNT % shards;
  let first = 0;
  for (let i = 0; i < shards; i++) {
    const size = base + (i < extra ? 1 : 0);
    ranges.push([first, first + size - 1]);
    first += size;
  }
  return ranges;
}

/** `0-5460,5461-10922` style text of ranges (kv-cluster status, logs). */
export function formatRanges(ranges: readonly SlotRange[]): string {
  return ranges.map(([a, b]) => (a === b ? String(a) : `${a}-${b}`)).join(',');
}
