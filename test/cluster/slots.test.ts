import { describe, expect, it } from 'vitest';
import { SlotMap } from '../../src/cluster/slot-map.js';
import { commonSlot, keySlot, SLOT_COUNT, splitSlots } from '../../src/cluster/slots.js';

describe('hash slots (Redis Cluster rules)', () => {
  it('matches the slots Redis computes (CLUSTER KEYSLOT)', () => {
    expect(keySlot('foo')).toBe(12182);
    expect(keySlot('bar')).toBe(5061);
    expect(keySlot('hello')).toBe(866);
    expect(keySlot(Buffer.from('foo'))).toBe(12182);
  });

  it('hashes only the tag between the first { and the next }', () => {
    expect(keySlot('{user1000}.following')).toBe(keySlot('{user1000}.followers'));
    expect(keySlot('{user1000}.following')).toBe(keySlot('user1000'));
    expect(keySlot('foo{bar}{zap}')).toBe(keySlot('bar'));
    expect(keySlot('foo{{bar}}zap')).toBe(keySlot('{bar'));
    // An empty tag hashes the whole key.
    expect(keySlot('foo{}{bar}')).not.toBe(keySlot('bar'));
    expect(commonSlot(['{a}1', '{a}2'])).toBe(keySlot('a'));
    expect(commonSlot(['a', 'b'])).toBe(-1);
  });

  it('splits the slots evenly and contiguously', () => {
    expect(splitSlots(3)).toEqual([
      [0, 5461],
      [5462, 10922],
      [10923, 16383],
    ]);
    expect(splitSlots(1)).toEqual([[0, SLOT_COUNT - 1]]);
    expect(() => splitSlots(0)).toThrow(/shard count/);
  });
});

describe('slot map', () => {
  it('routes every slot to exactly one shard and round-trips through JSON', () => {
    const map = SlotMap.even(['s1', 's2', 's3']);
    const again = SlotMap.parse(JSON.stringify(map));
    expect(again.shardOfSlot(0)).toBe('s1');
    expect(again.shardOfSlot(16383)).toBe('s3');
    expect(again.shardOf('foo')).toBe('s3');
    expect(again.rangesOf('s2')).toEqual([[5462, 10922]]);
    expect(again.describe()).toBe('s1: 0-5461; s2: 5462-10922; s3: 10923-16383');
  });

  it('refuses a gap, an overlap, a bad range, a duplicate shard or another version', () => {
    const shards = (slots: unknown) => ({ version: 1, shards: [{ id: 'a', slots }] });
    expect(() => SlotMap.from(shards([[0, 100]]))).toThrow(/slot 101 is not assigned/);
    expect(() =>
      SlotMap.from({
        version: 1,
        shards: [
          { id: 'a', slots: [[0, 9000]] },
          { id: 'b', slots: [[9000, 16383]] },
        ],
      }),
    ).toThrow(/slot 9000 is assigned twice/);
    expect(() => SlotMap.from(shards([[0, 16384]]))).toThrow(/not \[first, last\]/);
    expect(() => SlotMap.from(shards([[5, 1]]))).toThrow(/not \[first, last\]/);
    expect(() =>
      SlotMap.from({
        version: 1,
        shards: [
          { id: 'a', slots: [] },
          { id: 'a', slots: [[0, 16383]] },
        ],
      }),
    ).toThrow(/appears twice/);
    expect(() => SlotMap.from({ version: 2, shards: [] })).toThrow(/version 2/);
    expect(() => SlotMap.parse('{')).toThrow(/not JSON/);
    expect(() => SlotMap.from(shards([[0, 16383]])).shardOf('x')).not.toThrow();
  });
});
