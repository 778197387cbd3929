/**
 * The tick's acknowledgement without a promise (tick-ack.ts), as the
 * server's SET uses it (Store.setForAck, Store.flushTick): listeners are
 * called inside the end-of-tick flush, only after what the durability mode
 * promises, failed when the write is refused, never in the middle of a
 * caller's call stack (a rotation inside a write), and the promises of the
 * embedded API settle with the same outcome.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { MemFs } from '../../src/engine/mem-fs.js';
import type { FsyncMode } from '../../src/engine/options.js';
import { openStore, type Store } from '../../src/engine/store.js';
import { type AckListener, TickAck } from '../../src/engine/tick-ack.js';

const DIR = '/mem/db';

function open(fs: MemFs, fsync: FsyncMode, maxSegmentBytes = 64 * 1024): Promise<Store> {
  return openStore(DIR, {
    fs,
    fsync,
    fsyncIntervalMs: 60_000,
    maxSegmentBytes,
    logger: pino({ level: 'silent' }),
    compaction: { auto: false },
  });
}

/** Records each ackSettled call, with the file's live length when it came. */
class Recorder implements AckListener {
  calls: { tag: unknown; failed: boolean; error: unknown; fileBytes: number }[] = [];
  constructor(private readonly fileBytes: () => number) {}
  ackSettled(tag: unknown, failed: boolean, error: unknown): void {
    this.calls.push({ tag, failed, error, fileBytes: this.fileBytes() });
  }
}

/** The bytes of records in the active segment's file: its length without the zeros written ahead under `always` (Segment.zeroAhead). */
function segmentBytes(fs: MemFs, store: Store): number {
  const file = store.stats().segments.at(-1)!.file;
  const bytes = fs.readFile(`${DIR}/${file}`);
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === 0) end--;
  return end;
}

const turn = () => new Promise((r) => setImmediate(r));

describe('TickAck', () => {
  it('calls each listener once with its tag, settles once, and a late listener at once', async () => {
    const ack = new TickAck();
    const seen: unknown[] = [];
    const l: AckListener = { ackSettled: (tag, failed) => seen.push([tag, failed]) };
    ack.listen(l, 1);
    ack.listen(l, 2);
    const p = ack.promise();
    expect(ack.promise()).toBe(p);
    expect(seen).toEqual([]);
    ack.resolve();
    ack.reject(new Error('too late'));
    expect(seen).toEqual([
      [1, false],
      [2, false],
    ]);
    await expect(p).resolves.toBe(true);
    ack.listen(l, 3);
    expect(seen.at(-1)).toEqual([3, false]);
    const failed = new TickAck();
    const err = new Error('refused');
    failed.reject(err);
    await expect(failed.promise()).rejects.toBe(err);
  });

  it("acks that reuse a settled ack's listener list call only their own listeners, each once", () => {
    const seen: unknown[] = [];
    const next = new TickAck();
    const l: AckListener = {
      ackSettled: (tag) => {
        seen.push(tag);
        // Listening to the next ack while this one is still calling its listeners.
        if (tag === 'x') next.listen(l, 'z');
      },
    };
    const first = new TickAck();
    first.listen(l, 'a');
    first.resolve(); // its emptied list is kept for the next ack that gets a listener
    const second = new TickAck();
    second.listen(l, 'x');
    second.listen(l, 'y');
    second.resolve();
    expect(seen).toEqual(['a', 'x', 'y']);
    next.resolve();
    const last = new TickAck();
    last.listen(l, 'w');
    last.reject(new Error('refused'));
    expect(seen).toEqual(['a', 'x', 'y', 'z', 'w']);
  });

  it('interval: setForAck is acknowledged inside flushTick, after its bytes reached the file', async () => {
    const fs = new MemFs();
    const store = await open(fs, 'interval');
    const rec = new Recorder(() => segmentBytes(fs, store));
    const before = segmentBytes(fs, store);
    const ack = store.setForAck('k1', Buffer.from('v1'));
    expect(store.setForAck('k2', Buffer.from('v2'))).toBe(ack); // one ack per tick
    const promised = store.set('k3', 'v3'); // the embedded API shares it
    ack.listen(rec, 'a');
    expect(rec.calls).toEqual([]);
    expect(segmentBytes(fs, store)).toBe(before);
    store.flushTick();
    expect(rec.calls).toHaveLength(1);
    expect(rec.calls[0]!.failed).toBe(false);
    expect(rec.calls[0]!.fileBytes).toBeGreaterThan(before);
    await expect(promised).resolves.toBe(true);
    // Nothing pending: the next flushTick does nothing, and a new write gets a new ack.
    store.flushTick();
    const next = store.setForAck('k1', Buffer.from('v4'));
    expect(next).not.toBe(ack);
    await turn(); // the store's own end-of-tick flush, when no server flushes it first
    expect(next.settled).toBe(true);
    expect(store.getSync('k1')?.toString()).toBe('v4');
    await store.close();
  });

  it('always: acknowledged only once the fsync returned, never by the flush alone', async () => {
    const fs = new MemFs();
    const store = await open(fs, 'always');
    await store.sync();
    fs.holdFsyncs((p) => p.endsWith('.seg'));
    const rec = new Recorder(() => segmentBytes(fs, store));
    store.setForAck('k', Buffer.from('v')).listen(rec, 0);
    store.flushTick();
    for (let i = 0; i < 5; i++) await turn();
    expect(rec.calls).toEqual([]);
    fs.holdFsyncs(undefined);
    expect(fs.releaseFsyncs()).toBeGreaterThan(0);
    for (let i = 0; i < 5 && rec.calls.length === 0; i++) await turn();
    expect(rec.calls).toHaveLength(1);
    expect(rec.calls[0]!.failed).toBe(false);
    await store.close();
  });

  it('always: when a round ends, its acks settle first; the next round starts a turn later and writes out, in one write, the records buffered meanwhile and those made after the acks', async () => {
    const fs = new MemFs();
    const store = await open(fs, 'always');
    await store.sync();
    fs.holdFsyncs((p) => p.endsWith('.seg'));
    const settled: string[] = [];
    const l: AckListener = { ackSettled: (tag, failed) => settled.push(`${tag}${failed ? ' failed' : ''}`) };
    store.afterSyncAck = () => settled.push(`replies (fsyncs in flight: ${fs.heldFsyncs().length})`);
    store.setForAck('a', Buffer.from('1')).listen(l, 'a');
    store.flushTick(); // round 1: a
    expect(fs.heldFsyncs()).toHaveLength(1);
    const afterA = segmentBytes(fs, store);
    store.setForAck('b', Buffer.from('2')).listen(l, 'b');
    store.flushTick(); // left buffered while round 1 runs: the next round writes it
    expect(segmentBytes(fs, store)).toBe(afterA);
    expect(store.getSync('b')?.toString()).toBe('2'); // read from the write buffer
    store.setForAck('c', Buffer.from('3')).listen(l, 'c');
    for (let i = 0; i < 5; i++) await turn(); // the store's own tick end leaves it too
    expect(segmentBytes(fs, store)).toBe(afterA);
    for (let i = 0; i < 5; i++) await turn();
    expect(settled).toEqual([]);
    expect(fs.releaseFsyncs()).toBe(1);
    // Microtasks only, no event-loop turn: a's ack settled and its replies were asked
    // for; round 2 is not issued yet (Store.gatherForRound).
    for (let i = 0; i < 20; i++) await Promise.resolve();
    expect(settled).toEqual(['a', 'replies (fsyncs in flight: 0)']);
    expect(fs.heldFsyncs()).toHaveLength(0);
    // a's client writes again as soon as it is answered: d joins round 2 with b and c.
    store.setForAck('d', Buffer.from('4')).listen(l, 'd');
    store.flushTick(); // still buffered: the gathering turn counts as a running round
    expect(segmentBytes(fs, store)).toBe(afterA);
    const writesBefore = fs.writes;
    for (let i = 0; i < 5; i++) await turn();
    expect(fs.heldFsyncs()).toHaveLength(1); // one round for b, c and d
    expect(fs.writes - writesBefore).toBe(1); // their records in one write, before its fsync
    expect(segmentBytes(fs, store)).toBeGreaterThan(afterA);
    // None of b, c, d is acknowledged before that fsync of theirs returns.
    expect(settled).toHaveLength(2);
    fs.holdFsyncs(undefined);
    expect(fs.releaseFsyncs()).toBe(1);
    for (let i = 0; i < 5 && settled.length < 6; i++) await turn();
    expect(fs.heldFsyncs()).toHaveLength(0);
    // b, c and d were flushed together: one ack, which asks for the replies once.
    expect(settled.slice(2)).toEqual(['b', 'c', 'd', 'replies (fsyncs in flight: 0)']);
    await store.close();
  });

  it('a refused write settles the ack failed, and the write is undone', async () => {
    const fs = new MemFs();
    const store = await open(fs, 'interval');
    const rec = new Recorder(() => 0);
    fs.failWrites((p) => (p.endsWith('.seg') ? 'ENOSPC' : undefined));
    store.setForAck('k', Buffer.from('v')).listen(rec, 7);
    store.flushTick();
    expect(rec.calls).toHaveLength(1);
    expect(rec.calls[0]!.tag).toBe(7);
    expect(rec.calls[0]!.failed).toBe(true);
    expect((rec.calls[0]!.error as { code?: string }).code).toBe('IO_ERROR');
    expect(store.has('k')).toBe(false);
    fs.failWrites(undefined);
    await store.close();
  });

  it('a rotation inside a write does not call listeners from within that write', async () => {
    const fs = new MemFs();
    const store = await open(fs, 'interval', 1024);
    let inWrite = false;
    let calledInWrite = false;
    let calls = 0;
    const l: AckListener = {
      ackSettled: () => {
        calls++;
        if (inWrite) calledInWrite = true;
      },
    };
    const value = Buffer.alloc(300, 1);
    store.setForAck('a', value).listen(l, 0);
    inWrite = true;
    for (let i = 0; i < 5; i++) store.setForAck(`k${i}`, value); // rotates: flushes the first ack's write
    inWrite = false;
    expect(store.stats().segments.length).toBeGreaterThan(1);
    expect(calledInWrite).toBe(false);
    await Promise.resolve(); // settled in a microtask once the stack unwound
    expect(calls).toBe(1);
    store.flushTick();
    await store.close();
  });
});
