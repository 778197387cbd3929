/**
 * Replies are batched: the replies to a burst of pipelined requests leave in
 * one socket write, reads and acknowledged writes alike, and in order.
 */
import { Packr } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawConnection, type ServerProcess, spawnServer } from './spawn.js';

const packr = new Packr({ useRecords: false, variableMapSize: true });
function frame(v: unknown): Buffer {
  const body = packr.pack(v);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  return Buffer.concat([head, body]);
}

describe('reply batching', () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await spawnServer();
  });
  afterAll(async () => {
    await server.stop();
  });

  for (const kind of ['GET', 'SET'] as const) {
    it(`200 pipelined ${kind}s sent in one write are answered in one or two writes, in order`, async () => {
      const conn = await RawConnection.open(server.port);
      let chunks = 0;
      conn.socket.on('data', () => chunks++);
      const requests: Buffer[] = [];
      const expected: Buffer[] = [];
      for (let i = 0; i < 200; i++) {
        requests.push(
          frame(kind === 'GET' ? [i, 'GET', `missing:${i}`] : [i, 'SET', `batch:${i}`, Buffer.from('v')]),
        );
        expected.push(frame([i, kind === 'GET' ? null : true]));
      }
      conn.write(Buffer.concat(requests));
      const want = Buffer.concat(expected);
      const got = await conn.take(want.length);
      expect(got.equals(want)).toBe(true);
      expect(chunks).toBeLessThanOrEqual(2);
      conn.close();
    });
  }
});
