/**
 * FEED on a real server socket (protocol/PROTOCOL.md §6 FEED, §9): the SDK's
 * `client.feed()`, the tombstone horizon's OFFSET_OUT_OF_RANGE (also after a
 * restart), a feed that replays to the server's exact state while writes and
 * compactions run, and a reader that stops reading costing the server only a
 * bounded amount of memory.
 */
import { connect as netConnect } from 'node:net';
import { Packr } from 'msgpackr';
import { afterEach, describe, expect, it } from 'vitest';
import { FeedConnection } from '../../src/client/feed.js';
import { decodeHeader, RECORD_HEADER_BYTES } from '../../src/engine/record.js';
import { checkRun, RECORD_RUN_FORMAT } from '../../src/engine/record-run.js';
import { openStore, type Store } from '../../src/engine/store.js';
import { connect, type FeedRecord, KvError } from '../../src/index.js';
import { FEED_BATCH_BYTES, FEED_HIGH_WATER_BYTES } from '../../src/protocol/limits.js';
import type { KvServer } from '../../src/server/server.js';
import { removeTempDirs, silentLogger, tempDir } from '../engine/helpers.js';
import { inProcessServer } from '../server/in-process.js';

const packr = new Packr({ useRecords: false, variableMapSize: true });
function frame(v: unknown): Buffer {
  const body = packr.pack(v);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  return Buffer.concat([head, body]);
}

const open: { server: KvServer; store: Store }[] = [];
afterEach(async () => {
  for (const { server, store } of open.splice(0)) {
    await server.close();
    await store.close();
  }
  removeTempDirs();
});

async function start(dir = tempDir(), maxSegmentBytes = 4096) {
  const store = await openStore(dir, {
    maxSegmentBytes,
    logger: silentLogger,
    compaction: { auto: false },
  });
  const server = inProcessServer(store, { maxFrameBytes: 8 << 20 });
  const { port } = await server.listen();
  open.push({ server, store });
  return { store, server, port, dir };
}

/** Applies feed records to a model the way a replica does: batches on their end record. */
function replay(model: Map<string, string>, recs: readonly FeedRecord<string>[]): void {
  let pending: FeedRecord<string>[] = [];
  for (const r of recs) {
    if (r.batch && !r.batchEnd) {
      pending.push(r);
      continue;
    }
    for (const x of [...pending, r]) {
      if (x.tombstone) model.delete(x.key);
      else model.set(x.key, x.value!);
    }
    pending = [];
  }
}

async function take<V>(it: AsyncGenerator<FeedRecord<V>>, n: number): Promise<FeedRecord<V>[]> {
  const out: FeedRecord<V>[] = [];
  while (out.length < n) {
    const r = await it.next();
    if (r.done) break;
    out.push(r.value);
  }
  return out;
}

describe('FEED', () => {
  it('streams every record (values, tombstones, batches, expiries), then new writes as they happen', async () => {
    const { port } = await start();
    const c = await connect({ port });
    await c.set('a', '1');
    await c.mset({ b: '2', c: '3' });
    await c.del('a');
    await c.set('t', 'x', { ttlMs: 60_000 });
    const feed = c.feed({ from: 0 });
    const first = await take(feed, 5);
    expect(first.map((r) => [r.offset, r.key, r.value, r.tombstone, r.batch, r.batchEnd])).toEqual([
      [0, 'a', '1', false, false, false],
      [1, 'b', '2', false, true, false],
      [2, 'c', '3', false, true, true],
      [3, 'a', undefined, true, false, false],
      [4, 't', 'x', false, false, false],
    ]);
    expect(first[4]!.expiresAt).toBeGreaterThan(Date.now());
    // Live: a write after the reader caught up arrives on the open feed.
    const next = take(feed, 1);
    await c.set('late', 'v');
    expect((await next).map((r) => [r.offset, r.key, r.value])).toEqual([[5, 'late', 'v']]);
    await feed.return(undefined);
    // From the middle.
    const mid = await take(c.feed({ from: 3 }), 2);
    expect(mid.map((r) => r.offset)).toEqual([3, 4]);
    await c.close();
  });

  it('raw: record runs holding the records the decoded feed sends, whole, in the log format; a bad raw option is WRONG_ARGS', async () => {
    const { port } = await start();
    const c = await connect({ port });
    for (let i = 0; i < 200; i++) await c.set(`k${i % 30}`, `v${i}-${'x'.repeat(i % 70)}`);
    await c.mset({ b: '2', c: '3' });
    await c.del('k1');
    await c.set('t', 'x', { ttlMs: 60_000 });
    const end = (await c.role()).end;
    const decoded: string[] = [];
    for await (const r of c.feed({ from: 0 })) {
      decoded.push(`${r.offset} ${r.key} ${r.value} ${r.tombstone} ${r.expiresAt} ${r.batch}${r.batchEnd}`);
      if (r.offset >= end - 1) break;
    }
    const opts = { host: '127.0.0.1', port, connectTimeoutMs: 5000, maxReplyBytes: 8 << 20 };
    const bad = await FeedConnection.connect(opts);
    await expect(bad.feed(0, { raw: 'yes' })).rejects.toMatchObject({ code: 'WRONG_ARGS' });
    bad.close();
    const feed = await FeedConnection.connect(opts);
    const start0 = await feed.feed(0, { raw: true });
    expect(start0).toMatchObject({ from: 0, end, format: RECORD_RUN_FORMAT });
    const fromRaw: string[] = [];
    let next = 0;
    while (next < end) {
      const batch = await feed.next();
      if (batch === undefined || !('raw' in batch)) throw new Error('expected a raw batch');
      const run = Buffer.from(batch.raw);
      expect(checkRun(run, next - 1, 'test').whole).toBe(run.length);
      for (let at = 0; at < run.length; ) {
        const h = decodeHeader(run, at, run.length, 1 << 16)!;
        const k = at + RECORD_HEADER_BYTES;
        const key = run.toString('utf8', k, k + h.keyLength);
        const tomb = (h.flags & 1) !== 0;
        const value = tomb
          ? undefined
          : run.toString('utf8', k + h.keyLength, k + h.keyLength + h.valueLength);
        fromRaw.push(
          `${h.offset} ${key} ${value} ${tomb} ${h.expiresAt} ${(h.flags & 2) !== 0}${(h.flags & 4) !== 0}`,
        );
        at = k + h.keyLength + h.valueLength;
      }
      next = batch.next;
    }
    expect(fromRaw).toEqual(decoded);
    // Live: a write after the reader caught up arrives as a run of one record.
    await c.set('late', 'v');
    let live = await feed.next();
    while (live && 'raw' in live && live.raw.length === 0) live = await feed.next(); // heartbeats
    expect(live && 'raw' in live && checkRun(Buffer.from(live.raw), end - 1, 'test').records).toBe(1);
    feed.close();
    await c.close();
  });

  it('refuses an offset past the end, or below the tombstone horizon (also after a restart), with OFFSET_OUT_OF_RANGE', async () => {
    const s = await start();
    const c = await connect({ port: s.port });
    await expect(take(c.feed({ from: 1 }), 1)).rejects.toMatchObject({ code: 'OFFSET_OUT_OF_RANGE' });
    for (let i = 0; i < 200; i++) await c.set(`k${i % 20}`, `v${i}`);
    await c.del('k1');
    for (let i = 0; i < 200; i++) await c.set(`j${i % 20}`, `v${i}`);
    await c.compact(); // from the oldest segment: drops k1's tombstone
    const horizon = s.server.replication.horizon.state.tombstoneHorizon;
    expect(horizon).toBeGreaterThan(200);
    const err = await take(c.feed({ from: 100 }), 1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KvError);
    expect((err as KvError).code).toBe('OFFSET_OUT_OF_RANGE');
    expect((err as KvError).message).toMatch(/tombstone horizon/);
    // From 0 the compacted log is a snapshot: k1 absent, everything else there.
    const end = s.store.nextOffset;
    const model = new Map<string, string>();
    const recs: FeedRecord<string>[] = [];
    for await (const r of c.feed({ from: 0 })) {
      recs.push(r);
      if (r.offset >= end - 1) break;
    }
    replay(model, recs);
    expect(model.has('k1')).toBe(false);
    expect(model.get('j19')).toBe('v199');
    // From the horizon on: allowed.
    await c.set('after', '1');
    expect((await take(c.feed({ from: horizon }), 1))[0]!.offset).toBeGreaterThanOrEqual(horizon);
    await c.close();
    // The horizon survives a restart.
    const { server, store } = open.pop()!;
    await server.close();
    await store.close();
    const again = await start(s.dir);
    expect(again.server.replication.horizon.state.tombstoneHorizon).toBe(horizon);
    const c2 = await connect({ port: again.port });
    await expect(take(c2.feed({ from: 100 }), 1)).rejects.toMatchObject({ code: 'OFFSET_OUT_OF_RANGE' });
    await c2.close();
  });

  it('while writes and compactions run, a feed from 0 replays to the server state, offsets strictly increasing', async () => {
    const { store, port } = await start(tempDir(), 8192);
    const c = await connect({ port });
    for (let i = 0; i < 300; i++) await c.set(`k${i % 50}`, `pre${i}`);
    let writing = true;
    const writer = (async () => {
      let i = 0;
      // At least two compactions run under the feed, however slow the machine.
      while (writing || store.stats().compaction.runs < 2) {
        const k = `k${i % 50}`;
        const op = i % 9;
        if (op === 4) await c.del(k);
        else if (op === 7) await c.mset({ [k]: `m${i}`, [`k${(i + 1) % 50}`]: `m${i}` });
        else await c.set(k, `w${i}-${'y'.repeat(i % 200)}`);
        if (i % 250 === 0)
          await c.compact().catch((err: { code?: string }) => {
            if (err.code !== 'BUSY') throw err; // an automatic run is already under way
          });
        i++;
      }
    })();
    const model = new Map<string, string>();
    const recs: FeedRecord<string>[] = [];
    let last = -1;
    const feed = c.feed({ from: 0 });
    setTimeout(() => {
      writing = false;
    }, 2500);
    // The last write: a sentinel the reader stops at (a compaction may drop the log's last records).
    void writer.then(() => c.set('zz-end', '1'));
    for await (const r of feed) {
      expect(r.offset).toBeGreaterThan(last);
      last = r.offset;
      recs.push(r);
      if (recs.length % 500 === 0) await new Promise((res) => setTimeout(res, 5)); // a slowish reader
      if (r.key === 'zz-end') break;
    }
    await writer;
    replay(model, recs);
    const expected = new Map<string, string>();
    for await (const k of store.keys()) expected.set(k, store.getSync(k)!.toString());
    expect(model).toEqual(expected);
    expect(store.stats().compaction.runs).toBeGreaterThan(1);
    await c.close();
  }, 60_000);

  it.each([
    ['', [1, 'FEED', 0]],
    [' (raw)', [1, 'FEED', 0, { raw: true }]],
  ])(
    'a reader that stops reading holds at most the high-water mark of frames on the server; it then gets everything%s',
    async (_, request) => {
      const { server, store, port } = await start(tempDir(), 1 << 20);
      const c = await connect({ port, valueEncoding: 'buffer' });
      const value = Buffer.alloc(64 * 1024, 7);
      for (let i = 0; i < 400; i++) await c.set(`big${i}`, value); // ~26 MB of log
      const raw = netConnect({ host: '127.0.0.1', port });
      await new Promise((r) => raw.once('connect', r));
      raw.pause(); // never read (for now)
      raw.write(frame(request));
      let peak = 0;
      for (let t = 0; t < 20; t++) {
        await new Promise((r) => setTimeout(r, 50));
        for (const f of server.replication.feeds) {
          peak = Math.max(peak, (f as unknown as { sink: { unsentBytes: number } }).sink.unsentBytes);
        }
      }
      const [stream] = [...server.replication.feeds];
      expect(stream).toBeDefined();
      // Stalled part-way: it did not read the log ahead into memory.
      expect(stream!.position).toBeLessThan(200);
      expect(peak).toBeLessThanOrEqual(FEED_HIGH_WATER_BYTES + FEED_BATCH_BYTES + 128 * 1024);
      // Other clients are served meanwhile.
      expect((await c.get('big1'))?.length).toBe(value.length);
      // Resumed, the reader gets all 400 records.
      let received = 0;
      raw.on('data', (chunk: Buffer) => {
        received += chunk.length;
      });
      raw.resume();
      const deadline = Date.now() + 15_000;
      while (
        (stream!.position < store.nextOffset || received <= 400 * value.length) &&
        Date.now() < deadline
      ) {
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(stream!.position).toBe(store.nextOffset);
      expect(received).toBeGreaterThan(400 * value.length);
      raw.destroy();
      await c.close();
    },
    30_000,
  );
});
