/**
 * The shared reply writers (native and RESP) write each tick's replies from
 * the start of the same buffer once the last tick's were all copied out
 * (output-buffer.ts `rewind`): under a steady pipelined load they make no
 * new buffer, and every reply is still exact. Several connections share the
 * writer, pipelining SETs and GETs of values that change every round, so a
 * reply written over one not yet sent would show as a wrong value.
 * Under `--fsync always` the replies wait for the fsync, so places lent from
 * the writer stay out across ticks: batches ending in a SET check that the
 * writer still gets its buffers back rather than making new ones.
 */
import { Packr } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../src/engine/index.js';
import { respReplyBuffersMade } from '../../src/resp/connection.js';
import { nativeReplyBuffersMade } from '../../src/server/connection.js';
import type { KvServer } from '../../src/server/server.js';
import { mulberry32, seededBytes } from '../../tools/lib/prng.js';
import { rawFrame } from '../../tools/lib/raw-connection.js';
import { silentLogger } from '../engine/helpers.js';
import { inProcessServer } from './in-process.js';
import { RawConnection, tempDir } from './spawn.js';

const packr = new Packr({ useRecords: false, variableMapSize: true });
const CONNECTIONS = 3;
const ROUNDS = 80;
const PER_BATCH = 16;

let store: Store;
let server: KvServer;
let port: number;

beforeAll(async () => {
  store = await openStore(tempDir(), { fsync: 'never', logger: silentLogger, compaction: { auto: false } });
  server = inProcessServer(store);
  ({ port } = await server.listen());
});

afterAll(async () => {
  await server?.close();
  await store?.close();
});

/** The RESP encoding of a command. */
function resp(...args: (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = typeof a === 'string' ? Buffer.from(a) : a;
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/** Reads one RESP bulk string or simple reply from `c` (what SET and GET answer). */
async function respReply(c: RawConnection): Promise<Buffer | string | null> {
  const head = await c.take(1);
  let line = '';
  for (let b = await c.take(1); b[0] !== 0x0d; b = await c.take(1)) line += b.toString('latin1');
  await c.take(1); // \n
  if (head[0] === 0x2b) return line; // +OK
  if (head[0] !== 0x24) throw new Error(`unexpected reply ${head.toString()}${line}`);
  const n = Number(line);
  if (n < 0) return null;
  const v = await c.take(n + 2);
  return Buffer.from(v.subarray(0, n));
}

/** How a protocol writes SET and GET and reads a reply (a SET's reply as undefined, a GET's value as a Buffer). */
interface Codec {
  set(key: string, value: Buffer): Buffer;
  get(key: string): Buffer;
  reply(c: RawConnection): Promise<Buffer | undefined>;
}

let nextId = 0;

const native: Codec = {
  set: (key, value) => rawFrame(packr.pack([nextId++, 'SET', key, value])),
  get: (key) => rawFrame(packr.pack([nextId++, 'GET', key])),
  async reply(c) {
    const r = (await c.next(10_000)) as unknown[];
    expect(Array.isArray(r) && r.length === 2, JSON.stringify(r)).toBe(true);
    return r[1] === true ? undefined : Buffer.from(r[1] as Uint8Array);
  },
};

const redis: Codec = {
  set: (key, value) => resp('SET', key, value),
  get: (key) => resp('GET', key),
  async reply(c) {
    const r = await respReply(c);
    if (r === 'OK') return undefined;
    expect(Buffer.isBuffer(r)).toBe(true);
    return r as Buffer;
  },
};

/**
 * ROUNDS rounds in which every connection pipelines a SET of a fresh value
 * and GETs of it; every reply is checked. Returns the GET value bytes replied.
 */
async function pipelineRounds(codec: Codec, seed: number, setLast = false, to = port): Promise<number> {
  const conns = await Promise.all(Array.from({ length: CONNECTIONS }, () => RawConnection.open(to)));
  const rand = mulberry32(seed);
  let bytes = 0;
  let values: Buffer[] = [];
  try {
    if (setLast) {
      // A first value to read: the first round's GETs come before its SET.
      values = conns.map((c, ci) => {
        const v = seededBytes(60, ci);
        c.write(codec.set(`rb:${seed}:${ci}`, v));
        return v;
      });
      for (const c of conns) expect(await codec.reply(c), 'the first SET').toBeUndefined();
    }
    for (let round = 0; round < ROUNDS; round++) {
      const before = values;
      values = conns.map((c, ci) => {
        const key = `rb:${seed}:${ci}`;
        const v = seededBytes(60 + Math.floor(rand() * 200), round * 1000 + ci);
        // The GETs read the value the SET wrote: last, they read the one of the round before.
        const batch = setLast ? [] : [codec.set(key, v)];
        for (let i = 1; i < PER_BATCH; i++) batch.push(codec.get(key));
        if (setLast) batch.push(codec.set(key, v));
        c.write(Buffer.concat(batch));
        return v;
      });
      for (let ci = 0; ci < CONNECTIONS; ci++) {
        if (!setLast) expect(await codec.reply(conns[ci]!), `round ${round}: the SET`).toBeUndefined();
        const expected = setLast ? before[ci] : values[ci];
        for (let i = 1; i < PER_BATCH; i++) {
          const got = await codec.reply(conns[ci]!);
          expect(got?.equals(expected!), `round ${round}, GET ${i}`).toBe(true);
          bytes += got!.length;
        }
        if (setLast) expect(await codec.reply(conns[ci]!), `round ${round}: the SET`).toBeUndefined();
      }
    }
  } finally {
    for (const c of conns) c.close();
  }
  return bytes;
}

describe('the shared reply writers reuse their buffer', () => {
  it('native: pipelined SETs and GETs on several connections get exact replies, and the writer makes no new buffer', async () => {
    const before = nativeReplyBuffersMade();
    // Several 64 KiB buffers' worth of replies.
    expect(await pipelineRounds(native, 7)).toBeGreaterThan(4 * 64 * 1024);
    expect(nativeReplyBuffersMade() - before).toBeLessThanOrEqual(1);
  });

  it('RESP: the same, and the RESP writer makes no new buffer', async () => {
    const before = respReplyBuffersMade();
    expect(await pipelineRounds(redis, 8)).toBeGreaterThan(4 * 64 * 1024);
    expect(respReplyBuffersMade() - before).toBeLessThanOrEqual(1);
  });
});

describe('under --fsync always, pipelines that end in a write', () => {
  let alwaysStore: Store;
  let alwaysServer: KvServer;
  let alwaysPort: number;

  beforeAll(async () => {
    alwaysStore = await openStore(tempDir(), {
      fsync: 'always',
      logger: silentLogger,
      compaction: { auto: false },
    });
    alwaysServer = inProcessServer(alwaysStore);
    ({ port: alwaysPort } = await alwaysServer.listen());
  });

  afterAll(async () => {
    await alwaysServer?.close();
    await alwaysStore?.close();
  });

  // A batch's last write awaiting its fsync once took the slot queue; its reply then came
  // as a second piece of output after the batch's GETs, which pinned the writer's buffer:
  // a fresh 64 KiB buffer for about every 64 KiB of replies.
  it('native: GETs then a SET per batch get exact replies, and the writer reuses its buffers', async () => {
    const before = nativeReplyBuffersMade();
    expect(await pipelineRounds(native, 9, true, alwaysPort)).toBeGreaterThan(4 * 64 * 1024);
    expect(nativeReplyBuffersMade() - before).toBeLessThanOrEqual(2);
  });

  it('RESP: the same, and the RESP writer reuses its buffers', async () => {
    const before = respReplyBuffersMade();
    expect(await pipelineRounds(redis, 10, true, alwaysPort)).toBeGreaterThan(4 * 64 * 1024);
    expect(respReplyBuffersMade() - before).toBeLessThanOrEqual(2);
  });
});
