/**
 * HintWriter (sealing's incremental hint builder) against encodeHint: the
 * same bytes for the entries kept, whatever was added and dropped.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeHint, type HintEntry, HintWriter } from '../../src/engine/hint.js';

describe('HintWriter', () => {
  it('gives the bytes encodeHint gives for the entries it kept, in order', () => {
    const entry = fc.record({
      key: fc.string({
        unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)),
        minLength: 1,
        maxLength: 300,
      }),
      offset: fc.integer({ min: 0, max: 2 ** 53 - 1 }),
      position: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
      valueLength: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
      expiresAt: fc.integer({ min: 0, max: 2 ** 53 - 1 }),
      flags: fc.integer({ min: 0, max: 1 }),
      drop: fc.boolean(),
    });
    fc.assert(
      fc.property(
        fc.array(entry, { maxLength: 3000 }),
        fc.integer({ min: 0, max: 2 ** 40 }),
        (entries, base) => {
          const w = new HintWriter();
          const kept: HintEntry[] = [];
          const numbers = entries.map((e) =>
            w.add(e.key, e.offset, e.position, e.valueLength, e.expiresAt, e.flags),
          );
          entries.forEach((e, i) => {
            if (e.drop) w.drop(numbers[i]!);
            else kept.push({ ...e });
          });
          expect(w.count).toBe(kept.length);
          expect(w.finish(base).equals(encodeHint(base, kept))).toBe(true);
        },
      ),
      { numRuns: 50 },
    );
  });
});
