/**
 * Backpressure within one received chunk (DESIGN.md §5, §1.6). The server
 * pauses a connection whose unsent replies exceed REPLY_HIGH_WATER_BYTES
 * (4 MiB). It checked that before each frame but did not count the replies
 * already encoded into the shared FrameWriter for the same chunk, so one
 * 55 KB write of ~4000 GETs of a 60 KiB value was answered whole: ~240 MiB
 * buffered per connection that never reads (4 such connections: server RSS
 * 1 GB, measured with tools/hostile.ts's pipeline attack grown to 60 KiB
 * values). Now the pending writer bytes count, the connection pauses after
 * about 4 MiB of replies, and resumes and answers everything, in order, once
 * the client reads.
 *
 * The server runs in-process (KvServer over a MemFs store), so the buffered
 * replies show up in this process's `arrayBuffers`.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { Packr, Unpackr } from 'msgpackr';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../src/engine/index.js';
import { MemFs, memPath } from '../../src/engine/mem-fs.js';
import type { KvServer } from '../../src/server/server.js';
import { silentLogger } from '../engine/helpers.js';
import { inProcessServer } from '../server/in-process.js';

const packr = new Packr({ useRecords: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, int64AsType: 'number' });
const req = (...parts: unknown[]) => {
  const body = packr.pack(parts);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  return Buffer.concat([head, body]);
};

const VALUE_BYTES = 60 * 1024; // under the writer's zero-copy threshold: each reply is a copy
const GETS = 4000;

let store: Store;
let server: KvServer;

afterAll(async () => {
  await server?.close();
  await store?.close();
});

describe('backpressure inside one received chunk', () => {
  it('a client that sends 4000 GETs of 60 KiB in one write and does not read makes the server buffer MiBs, not hundreds', async () => {
    store = await openStore(memPath('d'), {
      fs: new MemFs(),
      fsync: 'never',
      logger: silentLogger,
      compaction: { auto: false },
    });
    server = inProcessServer(store, { maxClients: 10 });
    const { port } = await server.listen();
    await store.set('v', Buffer.alloc(VALUE_BYTES, 7));

    const socket: Socket = netConnect({ host: '127.0.0.1', port });
    await new Promise<void>((r) => socket.once('connect', () => r()));
    socket.pause(); // read nothing
    globalThis.gc?.();
    const before = process.memoryUsage().arrayBuffers;
    socket.write(Buffer.concat(Array.from({ length: GETS }, (_, i) => req(i + 1, 'GET', 'v'))));
    let peak = 0;
    for (let i = 0; i < 10; i++) {
      await new Promise((r) => setTimeout(r, 30));
      peak = Math.max(peak, process.memoryUsage().arrayBuffers - before);
    }
    // 4000 × 60 KiB = 234 MiB if the whole chunk is answered; the limit is 4 MiB plus one
    // writer chunk and the socket buffers.
    expect(peak / 2 ** 20).toBeLessThan(64);

    // Reading now: every reply arrives, in order.
    let got: Buffer = Buffer.alloc(0);
    let next = 1;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${next - 1} of ${GETS} replies`)), 20_000);
      socket.on('data', (b: Buffer) => {
        got = got.length === 0 ? b : Buffer.concat([got, b]);
        while (got.length >= 4 && got.length >= 4 + got.readUInt32BE(0)) {
          const n = got.readUInt32BE(0);
          const reply = unpackr.unpack(got.subarray(4, 4 + n)) as [number, Buffer];
          got = got.subarray(4 + n);
          if (reply[0] !== next || reply[1].length !== VALUE_BYTES) {
            clearTimeout(timer);
            reject(new Error(`reply ${JSON.stringify(reply[0])} where ${next} was due`));
            return;
          }
          next++;
        }
        if (next > GETS) {
          clearTimeout(timer);
          resolve();
        }
      });
      socket.resume();
    });
    socket.destroy();
  }, 30_000);
});
