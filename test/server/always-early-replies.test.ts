/**
 * Write replies encoded before their fsync (served-connection.ts
 * answerEarly) under `always`, for both protocols. The durability rule: no
 * byte of a pipeline whose write awaits its fsync leaves before that fsync
 * returned, the GETs around the write included. The cut-off: a batch read
 * later, with a write (and fsync) of its own, never holds the replies of an
 * earlier batch whose fsync returned, so a client that keeps streaming
 * writes is answered batch by batch. The fsyncs are held by the in-memory
 * file system (MemFs.holdFsyncs), so "before the fsync" is certain, not a
 * race.
 */
import { Packr, Unpackr } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MemFs } from '../../src/engine/mem-fs.js';
import type { Store } from '../../src/engine/store.js';
import type { KvServer } from '../../src/server/server.js';
import { RawConnection, rawFrame } from '../../tools/lib/raw-connection.js';
import { encodeCommand, parseReply, type Reply } from '../resp/raw.js';
import { memServer } from './in-process.js';

const packr = new Packr({ useRecords: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, int64AsType: 'number' });

let fs: MemFs;
let store: Store;
let server: KvServer;
let port: number;

beforeAll(async () => {
  ({ mem: fs, store, server, port } = await memServer('/mem/db', { fsync: 'always' }));
  await store.set('a', Buffer.from('1'));
});

afterAll(async () => {
  fs.holdFsyncs(undefined);
  fs.releaseFsyncs();
  await server?.close();
  await store?.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One protocol's view of a raw connection: send requests, count and decode the replies received so far. */
interface Client {
  send(requests: unknown[][]): void;
  replies(): unknown[];
  until(n: number): Promise<boolean>;
  close(): void;
}

async function nativeClient(): Promise<Client> {
  const c = await RawConnection.open(port);
  let id = 0;
  const replies = (): unknown[] => {
    const out: unknown[] = [];
    let b = c.received;
    while (b.length >= 4 && b.length >= 4 + b.readUInt32BE(0)) {
      const n = b.readUInt32BE(0);
      const [rid, value] = unpackr.unpack(b.subarray(4, 4 + n)) as [number, unknown];
      out.push([rid, value instanceof Uint8Array ? Buffer.from(value).toString() : value]);
      b = b.subarray(4 + n);
    }
    return out;
  };
  return {
    send: (requests) => c.write(Buffer.concat(requests.map((r) => rawFrame(packr.pack([++id, ...r]))))),
    replies,
    until: (n) => c.until(() => replies().length >= n, 10_000),
    close: () => c.close(),
  };
}

async function respClient(): Promise<Client> {
  const c = await RawConnection.open(port);
  const replies = (): Reply[] => {
    const out: Reply[] = [];
    let at = 0;
    for (let r = parseReply(c.received, at); r !== undefined; r = parseReply(c.received, at)) {
      out.push(r.value);
      at = r.end;
    }
    return out;
  };
  return {
    send: (requests) => c.write(Buffer.concat(requests.map((r) => encodeCommand(r as string[])))),
    replies,
    until: (n) => c.until(() => replies().length >= n, 10_000),
    close: () => c.close(),
  };
}

/** Waits until an fsync of the log is held (issued, not returned). */
async function fsyncHeld(): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (fs.heldFsyncs().length === 0 && Date.now() < deadline) await sleep(2);
  expect(fs.heldFsyncs().length, 'an fsync of the log is held').toBeGreaterThan(0);
}

/** Waits until the store has taken `n` more records than `from` (the server read a request). */
async function written(from: number, n: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (store.nextOffset < from + n && Date.now() < deadline) await sleep(2);
  expect(store.nextOffset).toBeGreaterThanOrEqual(from + n);
}

const protocols = [
  {
    name: 'native',
    open: nativeClient,
    get: (k: string) => ['GET', k],
    set: (k: string, v: string) => ['SET', k, Buffer.from(v)],
    ok: true as unknown,
    at: (id: number, v: unknown) => [id, v],
  },
  {
    name: 'RESP',
    open: respClient,
    get: (k: string) => ['GET', k],
    set: (k: string, v: string) => ['SET', k, v],
    ok: { simple: 'OK' } as unknown,
    at: (_id: number, v: unknown) => v,
  },
];

describe.each(protocols)('always, $name: write replies encoded early, sent after the fsync', (p) => {
  it('nothing of a mixed pipeline leaves before its fsync returned; then all of it, in order', async () => {
    const c = await p.open();
    try {
      fs.holdFsyncs((path) => path.endsWith('.seg'));
      const key = `${p.name}-m`;
      c.send([p.get('a'), p.set(key, 'x'), p.get(key), p.set(`${key}2`, 'y'), p.get('missing')]);
      await fsyncHeld();
      await sleep(100);
      expect(c.replies(), 'no reply before the fsync of the pipeline returned').toEqual([]);
      fs.holdFsyncs(undefined);
      fs.releaseFsyncs();
      expect(await c.until(5)).toBe(true);
      expect(c.replies()).toEqual([p.at(1, '1'), p.at(2, p.ok), p.at(3, 'x'), p.at(4, p.ok), p.at(5, null)]);
    } finally {
      fs.holdFsyncs(undefined);
      fs.releaseFsyncs();
      c.close();
    }
  });

  /**
   * Sends `first`, holds its fsync, sends `second` (read while that fsync
   * runs, so its write waits for the next round), completes the first round
   * only, and returns the replies received once the second round is held.
   */
  async function twoRounds(
    c: Client,
    first: unknown[][],
    second: unknown[][],
    expected: number,
  ): Promise<unknown[]> {
    fs.holdFsyncs((path) => path.endsWith('.seg'));
    const from = store.nextOffset;
    c.send(first);
    await fsyncHeld();
    c.send(second);
    await written(from, 2);
    expect(fs.releaseFsyncs(), 'the first fsync round').toBeGreaterThan(0);
    expect(await c.until(expected)).toBe(true);
    await fsyncHeld();
    await sleep(100);
    return c.replies();
  }

  it("a later batch with a write of its own does not hold an earlier batch's replies once its fsync returned", async () => {
    const c = await p.open();
    try {
      const key = `${p.name}-s`;
      // The first SET is answered early (a GET follows it), the second in the slot queue (last of its batch).
      const got = await twoRounds(
        c,
        [p.set(`${key}1`, 'one'), p.get('a')],
        [p.get(`${key}1`), p.set(`${key}2`, 'two')],
        2,
      );
      expect(got, "the first batch only: the second's replies wait for its fsync").toEqual([
        p.at(1, p.ok),
        p.at(2, '1'),
      ]);
      fs.holdFsyncs(undefined);
      fs.releaseFsyncs();
      expect(await c.until(4)).toBe(true);
      expect(c.replies()).toEqual([p.at(1, p.ok), p.at(2, '1'), p.at(3, 'one'), p.at(4, p.ok)]);
    } finally {
      fs.holdFsyncs(undefined);
      fs.releaseFsyncs();
      c.close();
    }
  });

  it('pipeline 1: a lone write is answered once its own fsync returned, not held for the next one', async () => {
    const c = await p.open();
    try {
      const key = `${p.name}-p1`;
      const got = await twoRounds(c, [p.set(`${key}1`, 'one')], [p.set(`${key}2`, 'two')], 1);
      expect(got, "the first write's reply only").toEqual([p.at(1, p.ok)]);
      fs.holdFsyncs(undefined);
      fs.releaseFsyncs();
      expect(await c.until(2)).toBe(true);
      expect(c.replies()).toEqual([p.at(1, p.ok), p.at(2, p.ok)]);
    } finally {
      fs.holdFsyncs(undefined);
      fs.releaseFsyncs();
      c.close();
    }
  });
});
