/**
 * Sealing holds the event loop in short steps (sealer.ts): the built hint is
 * written at most HINT_WRITE_STEP_BYTES and HINT_WRITE_STEP_ENTRIES builder
 * entries a turn, the sparse index at most INDEX_WRITE_STEP_ENTRIES entries a
 * turn, and the files are the bytes a one-piece encode gives. A 64 MiB seal
 * wrote 256 KiB of hint a turn (~1.4 ms in the server's first seal), looked
 * at 65k mostly dropped entries for its first step, and encoded its ~16k
 * index entries in one 3.5 ms turn.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { hintFile, indexFile } from '../../src/engine/filenames.js';
import { HINT_HEADER_BYTES } from '../../src/engine/hint.js';
import { HintBuilder, type HintCursor } from '../../src/engine/hint-builder.js';
import { MemFs } from '../../src/engine/mem-fs.js';
import { INDEX_ENTRY_BYTES } from '../../src/engine/sparse-index.js';
import { openStore } from '../../src/engine/store.js';
import { scannedHint, silentLogger } from './helpers.js';

const DIR = '/mem/db';

afterEach(() => vi.restoreAllMocks());

describe('sealing a segment', () => {
  it('writes the hint and the index a bounded step per turn of the event loop, as one-piece encodes would', async () => {
    const fs = new MemFs();
    // Per turn of the event loop (a setImmediate ticker counts them): bytes written into each .tmp file.
    let turn = 0;
    let ticking = true;
    const tick = () => {
      turn++;
      if (ticking) setImmediate(tick);
    };
    const perTurn = new Map<string, Map<number, number>>();
    const write = fs.write.bind(fs);
    const names = new Map<number, string>();
    const open = fs.open.bind(fs);
    vi.spyOn(fs, 'open').mockImplementation((path, flags) => {
      const fd = open(path, flags);
      names.set(fd, path);
      return fd;
    });
    vi.spyOn(fs, 'write').mockImplementation((fd, buf, offset, length, position) => {
      write(fd, buf, offset, length, position);
      const name = names.get(fd) ?? '';
      if (!name.endsWith('.tmp') || position === 0) return; // position 0: the header, written last
      const kind = name.includes('.hint') ? 'hint' : 'index';
      const turns = perTurn.get(kind) ?? new Map<number, number>();
      perTurn.set(kind, turns);
      turns.set(turn, (turns.get(turn) ?? 0) + length);
    });
    // Entries the hint builder looked at per fill (kept or dropped), and the fills per turn.
    const visits: number[] = [];
    const fillTurns: number[] = [];
    const fill = HintBuilder.prototype.fill;
    vi.spyOn(HintBuilder.prototype, 'fill').mockImplementation(function (
      this: HintBuilder,
      out: Buffer,
      cursor: HintCursor,
      maxVisits?: number,
    ) {
      const from = cursor.entry;
      const n = fill.call(this, out, cursor, maxVisits);
      visits.push(cursor.entry - from);
      fillTurns.push(turn);
      return n;
    });

    setImmediate(tick);
    const s = await openStore(DIR, {
      fs,
      fsync: 'never',
      logger: silentLogger,
      compaction: { auto: false },
      maxSegmentBytes: 8 * 1024 * 1024,
      indexIntervalBytes: 256, // ~30k index entries in the segment
    });
    // 20,000 keys written over and over: the segment's oldest hint entries are mostly
    // dropped: a step bounded by bytes alone looks at many more entries than it writes.
    const value = Buffer.alloc(100, 'v');
    let i = 0;
    while (s.ordered.length < 2) {
      const w = s.set(`key:${String(i % 20_000).padStart(8, '0')}`, value);
      if (++i % 1000 === 0) await w;
    }
    const sealed = s.ordered[0]!;
    await s.settleBackground();
    ticking = false;
    expect(sealed.hinted).toBe(true);

    const hintTurns = [...(perTurn.get('hint') ?? new Map<number, number>()).values()];
    const indexTurns = [...(perTurn.get('index') ?? new Map<number, number>()).values()];
    expect(hintTurns.length).toBeGreaterThan(10);
    expect(Math.max(...hintTurns)).toBeLessThanOrEqual(64 * 1024);
    expect(Math.max(...visits)).toBeLessThanOrEqual(4096);
    expect(new Set(fillTurns).size, 'one fill a turn').toBe(fillTurns.length);
    expect(indexTurns.length).toBeGreaterThan(10);
    expect(Math.max(...indexTurns)).toBeLessThanOrEqual(2048 * INDEX_ENTRY_BYTES);

    // The same bytes as the one-piece encodes.
    const hint = fs.readFile(`${DIR}/${hintFile(sealed.baseOffset)}`);
    expect(hint.length).toBeGreaterThan(HINT_HEADER_BYTES);
    expect(hint.equals(scannedHint(fs, DIR, sealed.name))).toBe(true);
    expect(fs.readFile(`${DIR}/${indexFile(sealed.baseOffset)}`).equals(sealed.index!.encode())).toBe(true);
    await s.close();
  });
});
