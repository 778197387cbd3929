/**
 * Replies are batched: the replies to a burst of pipelined requests leave in
 * one socket write, reads and acknowledged writes alike, and in order.
 */
import { Packr, Unpackr } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawConnection, type ServerProcess, spawnServer } from './spawn.js';

const packr = new Packr({ useRecords: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, int64AsType: 'number' });
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

  it('runs of SETs awaiting the same ack, with GETs, DELs and errors between them, are answered in order', async () => {
    const conn = await RawConnection.open(server.port);
    const requests: Buffer[] = [];
    const expected: Buffer[] = [];
    for (let i = 0; i < 300; i++) {
      const key = `run:${i % 7}`;
      switch (i % 6) {
        case 0:
        case 1:
        case 2:
          requests.push(frame([i, 'SET', key, Buffer.from(`v${i}`)]));
          expected.push(frame([i, true]));
          break;
        case 3:
          // The SET before it (i - 1) wrote run:((i - 1) % 7); a GET sees writes not yet acknowledged.
          requests.push(frame([i, 'GET', `run:${(i - 1) % 7}`]));
          expected.push(frame([i, Buffer.from(`v${i - 1}`)]));
          break;
        case 4:
          requests.push(frame([i, 'SET', '', Buffer.from('x')]));
          expected.push(Buffer.alloc(0)); // an INVALID_KEY error, checked below
          break;
        default:
          requests.push(frame([i, 'DEL', `absent:${i}`]));
          expected.push(frame([i, 0]));
      }
    }
    conn.write(Buffer.concat(requests));
    const replies: unknown[] = [];
    while (replies.length < 300) {
      const f = await conn.frame();
      expect(f, `reply ${replies.length} arrived`).toBeDefined();
      replies.push(unpackr.unpack(f!.subarray(4)));
    }
    for (let i = 0; i < 300; i++) {
      const r = replies[i] as unknown[];
      expect(r[0], `reply ${i} in order`).toBe(i);
      if (i % 6 === 4) expect((r[2] as { code: string }).code).toBe('INVALID_KEY');
      else expect(frame(r)).toEqual(expected[i]);
    }
    conn.close();
  });

  it('a pipelined batch of SETs and GETs of distinct keys (parsed once, by the look-ahead) stores each under its own key', async () => {
    // The batch's GET and SET frames are parsed by the look-ahead and its findings (key
    // place, value place, key hash) reused to run them: a SET stored under another
    // frame's hash or bytes would be missed by a lone GET of its key afterwards.
    const conn = await RawConnection.open(server.port);
    const n = 40;
    const requests: Buffer[] = [];
    const expected: Buffer[] = [];
    for (let i = 0; i < n; i++) {
      requests.push(frame([2 * i, 'SET', `ahead:${i}`, Buffer.from(`value-${i}`)]));
      expected.push(frame([2 * i, true]));
      const earlier = `ahead:${i >> 1}`;
      requests.push(frame([2 * i + 1, 'GET', earlier]));
      expected.push(frame([2 * i + 1, Buffer.from(`value-${i >> 1}`)]));
    }
    conn.write(Buffer.concat(requests));
    const want = Buffer.concat(expected);
    expect((await conn.take(want.length)).equals(want)).toBe(true);
    for (let i = 0; i < n; i++) {
      conn.write(frame([i, 'GET', `ahead:${i}`]));
      const f = await conn.frame();
      expect(unpackr.unpack(f!.subarray(4)), `ahead:${i} read alone`).toEqual([i, Buffer.from(`value-${i}`)]);
    }
    conn.close();
  });
});
