/**
 * FORMAT: the slot map, kept in etcd at `/segkv/<cluster>/slots` as JSON:
 *
 * ```json
 * { "version": 1, "shards": [ { "id": "s1", "slots": [[0, 5460]] }, ... ] }
 * ```
 *
 * | field            | type                  | rule                                          |
 * | ---------------- | --------------------- | --------------------------------------------- |
 * | `version`        | integer               | SLOT_MAP_VERSION; any other value is refused   |
 * | `shards[].id`    | name (etcd-keys.ts)   | unique                                        |
 * | `shards[].slots` | `[first, last][]`     | inclusive ranges in 0..16383                  |
 *
 * Every slot belongs to exactly one shard: a map with a gap or an overlap is
 * refused as a whole (a node never serves from a map it cannot trust). The
 * map is written by `kv-cluster create` with a create-only transaction and
 * read by every node (and client) that needs to route a key.
 */
import { KvError } from '../errors.js';
import { checkName } from './etcd-keys.js';
import { formatRanges, keySlot, SLOT_COUNT, type SlotRange, splitSlots } from './slots.js';

/** Version of the slot-map JSON. */
export const SLOT_MAP_VERSION = 1;

export interface ShardSlots {
  readonly id: string;
  readonly slots: readonly SlotRange[];
}

/** A validated slot map with a slot → shard lookup. */
export class SlotMap {
  readonly shards: readonly ShardSlots[];
  /** Index into `shards` for each slot. */
  private readonly owner: Uint16Array;

  private constructor(shards: readonly ShardSlots[], owner: Uint16Array) {
    this.shards = shards;
    this.owner = owner;
  }

  /** Slots split evenly over the named shards, in order. */
  static even(shardIds: readonly string[]): SlotMap {
    const ranges = splitSlots(shardIds.length);
    return SlotMap.from({
      version: SLOT_MAP_VERSION,
      shards: shardIds.map((id, i) => ({ id, slots: [ranges[i]!] })),
    });
  }

  /** Validates a parsed JSON value; throws INVALID_ARGUMENT saying what is wrong. */
  static from(value: unknown): SlotMap {
    const bad = (why: string) => new KvError('INVALID_ARGUMENT', `invalid slot map: ${why}`);
    if (typeof value !== 'object' || value === null) throw bad('not an object');
    const { version, shards } = value as { version?: unknown; shards?: unknown };
    if (version !== SLOT_MAP_VERSION) throw bad(`version ${String(version)}, expected ${SLOT_MAP_VERSION}`);
    if (!Array.isArray(shards) || shards.length === 0) throw bad('"shards" must be a non-empty array');
    const owner = new Uint16Array(SLOT_COUNT).fill(0xffff);
    const ids = new Set<string>();
    const out: ShardSlots[] = [];
    for (const [i, s] of shards.entries()) {
      const id = checkName('shard id', (s as { id?: unknown })?.id);
      if (ids.has(id)) throw bad(`shard ${id} appears twice`);
      ids.add(id);
      const slots = (s as { slots?: unknown }).slots;
      if (!Array.isArray(slots)) throw bad(`shard ${id}: "slots" must be an array of [first, last]`);
      const ranges: SlotRange[] = [];
      for (const r of slots) {
        const [a, b] = Array.isArray(r) && r.length === 2 ? (r as unknown[]) : [];
        if (
          !Number.isInteger(a) ||
          !Number.isInteger(b) ||
          (a as number) < 0 ||
          (b as number) >= SLOT_COUNT ||
          (a as number) > (b as number)
        )
          throw bad(
            `shard ${id}: slot range ${JSON.stringify(r)} is not [first, last] within 0..${SLOT_COUNT - 1}`,
          );
        for (let slot = a as number; slot <= (b as number); slot++) {
          if (owner[slot] !== 0xffff) throw bad(`slot ${slot} is assigned twice`);
          owner[slot] = i;
        }
        ranges.push([a as number, b as number]);
      }
      out.push({ id, slots: ranges });
    }
    const gap = owner.indexOf(0xffff);
    if (gap !== -1) throw bad(`slot ${gap} is not assigned to any shard`);
    return new SlotMap(out, owner);
  }

  static parse(json: string): SlotMap {
    let value: unknown;
    try {
      value = JSON.parse(json);
    } catch (err) {
      throw new KvError('INVALID_ARGUMENT', `invalid slot map: not JSON (${(err as Error).message})`);
    }
    return SlotMap.from(value);
  }

  toJSON(): { version: number; shards: ShardSlots[] } {
    return { version: SLOT_MAP_VERSION, shards: this.shards.map((s) => ({ id: s.id, slots: [...s.slots] })) };
  }

  /** The shard owning a slot. */
  shardOfSlot(slot: number): string {
    return this.shards[this.owner[slot]!]!.id;
  }

  /** The shard owning a key's slot. */
  shardOf(key: string | Uint8Array): string {
    return this.shardOfSlot(keySlot(key));
  }

  /** The slot ranges of one shard, or undefined when the map has no such shard. */
  rangesOf(shard: string): readonly SlotRange[] | undefined {
    return this.shards.find((s) => s.id === shard)?.slots;
  }

  describe(): string {
    return this.shards.map((s) => `${s.id}: ${formatRanges(s.slots)}`).join('; ');
  }
}
