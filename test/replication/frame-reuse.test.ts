/**
 * A replica's side of the raw feed with reused buffers (FeedConnection
 * recycleFrames, client/slab-frames.ts) and the primary's frame buffers
 * (replication/frame-pool.ts), against a real server on 127.0.0.1:
 * - runs applied and then their frames' bytes overwritten (as a reused slab
 *   is) leave the applied data intact, batches cut between frames included,
 *   also after a reopen; a batch held (taken, not recycled) is not
 *   overwritten by the frames arriving after it; the slabs are reused;
 * - the primary's frame buffers are reused only once the kernel has taken
 *   their frames: a slow reader still gets every run intact (CRCs checked);
 * - a full resync presizes the replica's keydir from the FEED reply's `keys`
 *   (no rehash while it loads).
 */
import { connect as netConnect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { FeedConnection } from '../../src/client/feed.js';
import type { SlabFrameReader } from '../../src/client/slab-frames.js';
import { decodeHeader, RECORD_HEADER_BYTES } from '../../src/engine/record.js';
import { BatchJoiner, checkRun } from '../../src/engine/record-run.js';
import { openStore, type Store } from '../../src/engine/store.js';
import { connect } from '../../src/index.js';
import { encodeFrame, FrameReader, unpackr } from '../../src/protocol/frame.js';
import {
  FEED_FRAME_BUFFER_BYTES,
  FEED_FRAME_BUFFERS,
  FEED_FREE_SLABS,
  FEED_SLAB_BYTES,
} from '../../src/protocol/limits.js';
import type { RawFeedBatch } from '../../src/protocol/messages.js';
import type { FramePool } from '../../src/replication/frame-pool.js';
import type { KvServer } from '../../src/server/server.js';
import { removeTempDirs, silentLogger, tempDir } from '../engine/helpers.js';
import { inProcessServer } from '../server/in-process.js';
import { until } from './helpers.js';

const STORE = { maxSegmentBytes: 1 << 20, logger: silentLogger, compaction: { auto: false } };

const open: { server: KvServer | undefined; store: Store }[] = [];
afterEach(async () => {
  for (const { server, store } of open.splice(0)) {
    await server?.close();
    if (!store.isClosed) await store.close();
  }
  servers.length = 0;
  removeTempDirs();
});

const servers: KvServer[] = [];

async function primary(): Promise<{ store: Store; port: number }> {
  const store = await openStore(tempDir(), STORE);
  const server = inProcessServer(store, { maxFrameBytes: 8 << 20 });
  servers.unshift(server);
  const { port } = await server.listen();
  open.push({ server, store });
  return { store, port };
}

/** Keys with values, sorted. */
function contents(store: Store): string[] {
  const out: string[] = [];
  for (const [k] of store.keydir.entries()) {
    const v = store.getSync(Buffer.from(k, 'latin1'));
    if (v !== undefined) out.push(`${k}=${v.toString('latin1')}`);
  }
  return out.sort();
}

/** ~`mib` MiB of MSET batches of 7 keys with values of varied sizes (batches get cut between frames). */
async function fill(port: number, mib: number): Promise<void> {
  const c = await connect({ port });
  let bytes = 0;
  for (let i = 0; bytes < mib * 2 ** 20; i++) {
    const batch: Record<string, string> = {};
    for (let j = 0; j < 7; j++) {
      const v = `${i}.${j}:${'v'.repeat(((i * 7 + j) * 37) % 900)}`;
      batch[`k${(i * 7 + j) % 20_000}`] = v;
      bytes += v.length + 40;
    }
    await c.mset(batch);
  }
  await c.close();
}

describe('raw feed with reused frame buffers', () => {
  it('runs applied, then their bytes overwritten, leave the replica intact (cut batches too, and after a reopen); a held batch is not overwritten; slabs are reused', async () => {
    const p = await primary();
    await fill(p.port, 10);
    const dir = tempDir();
    let replica = await openStore(dir, { ...STORE, maxSegmentBytes: 300_000 });
    open.push({ server: undefined, store: replica });
    const feed = await FeedConnection.connect({
      host: '127.0.0.1',
      port: p.port,
      connectTimeoutMs: 5000,
      maxReplyBytes: 8 << 20,
      recycleFrames: true,
    });
    const start = await feed.feed(0, { raw: true });
    expect(start.keys).toBe(p.store.size);
    const end = start.end;
    const joiner = new BatchJoiner();
    let received = 0;
    let cuts = 0;
    // The first batch is held (taken, not recycled) until the frames after it have filled the queue.
    const first = (await feed.next()) as RawFeedBatch;
    const firstCopy = Buffer.from(first.raw);
    await new Promise((r) => setTimeout(r, 300));
    let queued = 0;
    const taken: RawFeedBatch[] = [first];
    for (let b = feed.nextQueued(); b !== undefined; b = feed.nextQueued()) {
      taken.push(b as RawFeedBatch);
      queued += (b as RawFeedBatch).raw.length;
    }
    expect(queued).toBeGreaterThan(FEED_SLAB_BYTES); // more than a slab arrived behind it
    expect(Buffer.from(first.raw).equals(firstCopy)).toBe(true);
    let next = 0;
    for (;;) {
      const runs: Buffer[] = [];
      for (const batch of taken) {
        received += batch.raw.length;
        const raw = Buffer.from(batch.raw.buffer, batch.raw.byteOffset, batch.raw.byteLength);
        for (const run of joiner.push(raw)) runs.push(run);
        if (joiner.waiting) cuts++;
        next = batch.next;
      }
      if (runs.length > 0) await replica.applyReplicatedRaw(runs, joiner.waiting ? 0 : next);
      feed.recycle();
      // What a reused slab does to a frame after its use: nothing applied may depend on it.
      for (const batch of taken) batch.raw.fill(0xee);
      taken.length = 0;
      if (next >= end && !joiner.waiting) break;
      taken.push((await feed.next()) as RawFeedBatch);
      for (let b = feed.nextQueued(); b !== undefined; b = feed.nextQueued()) taken.push(b as RawFeedBatch);
    }
    feed.close();
    expect(cuts).toBeGreaterThan(0);
    expect(replica.nextOffset).toBe(p.store.nextOffset);
    expect(contents(replica)).toEqual(contents(p.store));
    // Far more bytes than the slabs held: they were reused.
    const slabs = (feed as unknown as { slabs: SlabFrameReader }).slabs;
    expect(received).toBeGreaterThan(6 * FEED_SLAB_BYTES);
    expect(slabs.allocated).toBeLessThanOrEqual(FEED_FREE_SLABS + 1);
    await replica.close();
    replica = await openStore(dir, STORE);
    open.push({ server: undefined, store: replica });
    expect(contents(replica)).toEqual(contents(p.store));
  }, 60_000);

  it("the primary's reused frame buffers: a slow reader (frames queued in the socket) gets every run intact", async () => {
    const p = await primary();
    const c = await connect({ port: p.port, valueEncoding: 'buffer' });
    let seed = 1;
    for (let i = 0; i < 300; i++) {
      const v = Buffer.alloc(30_000 + ((i * 7919) % 40_000));
      for (let j = 0; j < v.length; j++) v[j] = (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 24;
      await c.set(`big${i % 200}`, v);
    }
    await c.close();
    const end = p.store.nextOffset;
    const sock = netConnect({ host: '127.0.0.1', port: p.port });
    await new Promise((r) => sock.once('connect', r));
    const reader = new FrameReader(8 << 20);
    const got = new Map<string, string>();
    let last = -1;
    let failure: unknown;
    sock.on('data', (chunk: Buffer) => {
      reader.push(chunk);
      try {
        for (let b = reader.next(); b !== undefined; b = reader.next()) {
          const [, reply] = unpackr.unpack(b) as [number, { raw?: Uint8Array }];
          if (reply.raw === undefined) continue; // the start reply
          const run = Buffer.from(reply.raw);
          const check = checkRun(run, last, 'the test feed'); // every CRC
          if (check.records > 0) last = check.lastOffset;
          for (let at = 0; at < run.length; ) {
            const h = decodeHeader(run, at, run.length, 1 << 16)!;
            const k = at + RECORD_HEADER_BYTES;
            const v = run.toString('latin1', k + h.keyLength, k + h.keyLength + h.valueLength);
            got.set(run.toString('latin1', k, k + h.keyLength), v);
            at = k + h.keyLength + h.valueLength;
          }
        }
      } catch (err) {
        failure ??= err;
      }
    });
    sock.write(encodeFrame([1, 'FEED', 0, { raw: true }]));
    // A slow reader: stalls and reads by turns, so the server's frames wait in the socket (libuv's queue).
    for (let i = 0; i < 40 && last < end - 1 && failure === undefined; i++) {
      sock.pause();
      await new Promise((r) => setTimeout(r, 40));
      sock.resume();
      await new Promise((r) => setTimeout(r, 10));
    }
    await until('the whole log', () => last >= end - 1 || failure !== undefined);
    const [stream] = [...servers[0]!.replication.feeds];
    const pool = (stream as unknown as { frames: FramePool }).frames;
    sock.destroy();
    expect(failure).toBeUndefined();
    expect([...got].map(([k, v]) => `${k}=${v}`).sort()).toEqual(contents(p.store));
    expect(pool.sent).toBeGreaterThan(8 * FEED_FRAME_BUFFER_BYTES);
    expect(pool.allocated).toBeLessThanOrEqual(FEED_FRAME_BUFFERS + 2);
  }, 60_000);

  it('a full resync sizes the replica keydir from the primary key count: no rehash while loading', async () => {
    const p = await primary();
    const c = await connect({ port: p.port });
    const keys = 30_000;
    for (let i = 0; i < keys; i += 500) {
      const batch: Record<string, string> = {};
      for (let j = i; j < i + 500; j++) batch[`key:${j}`] = `v${j}`;
      await c.mset(batch);
    }
    await c.close();
    const store = await openStore(tempDir(), STORE);
    const server = inProcessServer(store, { replicaOf: { host: '127.0.0.1', port: p.port } });
    await server.listen();
    open.push({ server, store });
    await until('the replica to catch up', () => server.store.nextOffset >= p.store.nextOffset);
    const kd = server.store.keydir;
    expect(kd.size).toBe(keys);
    expect(kd.resizes).toBe(0); // from 1024 buckets it would double 5 times
    expect(kd.capacity).toBeGreaterThan(keys);
    expect(contents(server.store)).toEqual(contents(p.store));
  }, 60_000);
});
