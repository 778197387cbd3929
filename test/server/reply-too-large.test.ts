/**
 * A reply that cannot be framed gets TOO_LARGE and nothing else (issue 11, E:
 * an MGET reply over 4 GiB went out with a wrong length prefix and then its
 * body, desynchronising the stream). The limit is MAX_REPLY_BYTES (2^32-1,
 * the uint32 prefix); this server lowers it to 1 MiB so the test needs no
 * 4 GiB. The connection stays in step: replies before and after are intact.
 */
import { Packr } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../src/engine/index.js';
import type { KvServer } from '../../src/server/server.js';
import { rawFrame } from '../../tools/lib/raw-connection.js';
import { silentLogger, tempDir } from '../engine/helpers.js';
import { inProcessServer } from './in-process.js';
import { RawConnection } from './spawn.js';

const packr = new Packr({ useRecords: false, variableMapSize: true });
const LIMIT = 1 << 20;
const VALUE = Buffer.alloc(400 * 1024, 0x76);
/** Two of these are exactly LIMIT bytes of values: only the frame's envelope takes the reply over. */
const HALF = Buffer.alloc(LIMIT / 2, 0x68);

let store: Store;
let server: KvServer;
let port: number;

beforeAll(async () => {
  store = await openStore(tempDir(), { logger: silentLogger, fsync: 'never' });
  server = inProcessServer(store, { maxReplyBytes: LIMIT, maxFrameBytes: 4 << 20 });
  port = (await server.listen()).port;
});

afterAll(async () => {
  await server?.close();
  await store?.close();
});

describe('a reply over the frame limit', () => {
  it('MGET of values over the limit is TOO_LARGE, between intact replies, and the stream stays in step', async () => {
    const c = await RawConnection.open(port);
    c.write(rawFrame(packr.pack([1, 'MSET', 'a', VALUE, 'b', VALUE, 'c', VALUE, 'h1', HALF, 'h2', HALF])));
    expect(await c.next()).toEqual([1, true]);
    // Pipelined in one write: a small reply, the too-large one, a small one.
    c.write(
      Buffer.concat([
        rawFrame(packr.pack([2, 'GET', 'a'])),
        rawFrame(packr.pack([3, 'MGET', 'a', 'b', 'c'])),
        rawFrame(packr.pack([4, 'MGET', 'a', 'b'])),
        rawFrame(packr.pack([5, 'MGET', 'h1', 'h2'])),
        rawFrame(packr.pack([6, 'PING'])),
      ]),
    );
    expect(await c.next()).toEqual([2, VALUE]);
    expect(await c.next()).toMatchObject([3, null, { code: 'TOO_LARGE' }]); // values alone over the limit
    expect(await c.next()).toEqual([4, [VALUE, VALUE]]);
    expect(await c.next()).toMatchObject([5, null, { code: 'TOO_LARGE' }]); // the frame is, by its envelope
    expect(await c.next()).toEqual([6, 'PONG']);
    expect(c.received.length).toBe(0);
    c.close();
  });

  it('a reply over the limit behind a pending write is TOO_LARGE in its turn', async () => {
    const c = await RawConnection.open(port);
    c.write(
      Buffer.concat([
        rawFrame(packr.pack([6, 'SET', 'd', VALUE])),
        rawFrame(packr.pack([7, 'MGET', 'h1', 'h2'])),
        rawFrame(packr.pack([8, 'GET', 'd'])),
      ]),
    );
    expect(await c.next()).toEqual([6, true]);
    expect(await c.next()).toMatchObject([7, null, { code: 'TOO_LARGE' }]);
    expect(await c.next()).toEqual([8, VALUE]);
    c.close();
  });
});
