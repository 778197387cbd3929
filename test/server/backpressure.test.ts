/**
 * A client that sends a flood of requests and never reads its replies must
 * not grow the server's memory without bound (DESIGN.md §1.6, §5): the
 * server stops reading from it once its unsent replies pass the high-water
 * mark, and serves everyone else meanwhile.
 */
import { readFileSync } from 'node:fs';
import { Packr } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KvClient } from '../../src/index.js';
import { RawConnection, type ServerProcess, spawnServer } from './spawn.js';

const packr = new Packr({ useRecords: false, variableMapSize: true });

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

function frame(v: unknown): Buffer {
  const body = packr.pack(v);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  return Buffer.concat([head, body]);
}

describe('backpressure', () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await spawnServer();
  });
  afterAll(async () => {
    await server.stop();
  });

  it('a client that never reads 200k GET replies of 1 KiB (200 MiB) leaves server RSS bounded', async () => {
    const c = new KvClient<Buffer>({ port: server.port, valueEncoding: 'buffer' });
    await c.set('big', Buffer.alloc(1024, 1));
    const before = rssBytes(server.proc.pid!);

    const flood = await RawConnection.open(server.port);
    flood.socket.pause(); // never read
    const n = 200_000;
    const batch: Buffer[] = [];
    for (let i = 0; i < n; i++) {
      batch.push(frame([i, 'GET', 'big']));
      if (batch.length === 10_000) {
        flood.socket.write(Buffer.concat(batch));
        batch.length = 0;
      }
    }
    // Let the server read and answer as much as it will.
    await new Promise((r) => setTimeout(r, 1500));
    const during = rssBytes(server.proc.pid!);
    // Other clients are still served while the flood is parked.
    const t0 = Date.now();
    expect((await c.get('big'))?.length).toBe(1024);
    expect(Date.now() - t0).toBeLessThan(1000);
    const observer = new KvClient({ port: server.port });
    const info = await observer.info('clients');
    await observer.close();
    expect((info.clients as { connected: number }).connected).toBeGreaterThanOrEqual(2);
    // 200 MiB of replies would be owed; the server may hold only its high-water mark plus buffers.
    if (process.env.SEGKV_TEST_VERBOSE)
      console.log(`server RSS grew ${((during - before) / 2 ** 20).toFixed(1)} MiB`);
    expect(during - before).toBeLessThan(64 * 1024 * 1024);
    flood.close();
    await c.close();
  });

  it('a client that reads slowly still gets every reply, in order', async () => {
    const conn = await RawConnection.open(server.port);
    const n = 20_000;
    const parts: Buffer[] = [];
    for (let i = 0; i < n; i++) parts.push(frame([i, 'PING', `m${i}`]));
    conn.socket.write(Buffer.concat(parts));
    for (let i = 0; i < n; i++) {
      const f = await conn.frame(5000);
      expect(f).toBeDefined();
      if (i % 5000 === 0) await new Promise((r) => setTimeout(r, 50));
      const expected = frame([i, `m${i}`]);
      if (!f!.equals(expected)) expect(f!.toString('hex')).toBe(expected.toString('hex'));
    }
    conn.close();
  });
});
