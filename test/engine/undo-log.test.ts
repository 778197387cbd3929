/**
 * The write tick's undo log keeps its locations in 64 KiB pages (undo-log.ts):
 * entries across many pages come back newest first with their values, a large
 * tick gives its pages back at clear, and the next tick starts empty.
 */
import { describe, expect, it } from 'vitest';
import { UndoLog } from '../../src/engine/undo-log.js';

type Entry = [string, number, number, number, number];

function entriesOf(log: UndoLog): Entry[] {
  const out: Entry[] = [];
  log.forEachNewestFirst((key, segment, position, valueLength, expiresAt) =>
    out.push([key, segment, position, valueLength, expiresAt]),
  );
  return out;
}

const entry = (i: number): Entry => [
  `k${i}`,
  i % 7 === 0 ? -1 : i % 300,
  i * 31,
  i % 1000,
  i % 3 === 0 ? 2 ** 41 + i : 0,
];

function fill(log: UndoLog, n: number): Entry[] {
  const pushed: Entry[] = [];
  for (let i = 0; i < n; i++) {
    const e = entry(i);
    log.push(...e);
    pushed.push(e);
  }
  return pushed;
}

describe('UndoLog', () => {
  it('gives back every entry of a tick spanning many pages, newest first', () => {
    const log = new UndoLog();
    const pushed = fill(log, 40_000);
    expect(log.length).toBe(40_000);
    expect(entriesOf(log)).toEqual(pushed.reverse());
  });

  it('starts the next tick empty after a large one, and fills again across pages', () => {
    const log = new UndoLog();
    fill(log, 20_000);
    log.clear();
    expect(log.length).toBe(0);
    expect(entriesOf(log)).toEqual([]);
    const pushed = fill(log, 5_000);
    expect(entriesOf(log)).toEqual(pushed.reverse());
    log.clear();
    const small = fill(log, 3);
    expect(entriesOf(log)).toEqual(small.reverse());
  });

  it('gives back keys pushed as bytes (pushBytes) among string ones, past the arena’s first size, and after clear', () => {
    const log = new UndoLog();
    for (const n of [3, 2_000]) {
      const pushed: Entry[] = [];
      const frame = Buffer.alloc(1100);
      const view = new DataView(frame.buffer, frame.byteOffset, frame.length);
      for (let i = 0; i < n; i++) {
        const e = entry(i);
        if (i % 2 === 0) {
          log.push(...e);
        } else {
          const length = 1 + ((i * 37) % 1000); // keys of every byte value, 1 MB in all: the arena grows
          for (let j = 0; j < length; j++) frame[5 + j] = (i + j * 11) & 0xff;
          e[0] = frame.toString('latin1', 5, 5 + length);
          log.pushBytes(view, 5, length, e[1], e[2], e[3], e[4]);
        }
        pushed.push(e);
      }
      expect(entriesOf(log)).toEqual(pushed.reverse());
      log.clear();
      expect(entriesOf(log)).toEqual([]);
    }
  });
});
