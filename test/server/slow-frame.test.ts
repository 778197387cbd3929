/**
 * Slow clients (slowloris): a frame that has started arriving must be complete
 * within the frame timeout (30 s by default; 600 ms here), or the connection
 * gets a fatal TIMEOUT frame and is closed. A client that keeps completing
 * frames is never cut, however long it stays, and neither is one that sends
 * nothing at all (that is the idle timeout's business).
 */
import { connect as netConnect, type Socket } from 'node:net';
import { Packr, Unpackr } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../src/engine/index.js';
import { MemFs, memPath } from '../../src/engine/mem-fs.js';
import type { KvServer } from '../../src/server/server.js';
import { silentLogger } from '../engine/helpers.js';
import { inProcessServer } from './in-process.js';

const FRAME_TIMEOUT_MS = 600;
const packr = new Packr({ useRecords: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, int64AsType: 'number' });
const frame = (...parts: unknown[]) => {
  const body = packr.pack(parts);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  return Buffer.concat([head, body]);
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let store: Store;
let server: KvServer;
let port: number;

beforeAll(async () => {
  store = await openStore(memPath('slow'), {
    fs: new MemFs(),
    logger: silentLogger,
    compaction: { auto: false },
  });
  server = inProcessServer(store, { frameTimeoutMs: FRAME_TIMEOUT_MS });
  ({ port } = await server.listen());
});

afterAll(async () => {
  await server?.close();
  await store?.close();
});

function open(): Promise<{ socket: Socket; received: () => Buffer; closed: Promise<void> }> {
  const socket = netConnect({ host: '127.0.0.1', port });
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  return new Promise((resolve) =>
    socket.once('connect', () => resolve({ socket, received: () => Buffer.concat(chunks), closed })),
  );
}

/** The MessagePack bodies in a byte stream of frames. */
function frames(bytes: Buffer): unknown[] {
  const out: unknown[] = [];
  let at = 0;
  while (at + 4 <= bytes.length) {
    const n = bytes.readUInt32BE(at);
    out.push(unpackr.unpack(bytes.subarray(at + 4, at + 4 + n)));
    at += 4 + n;
  }
  return out;
}

describe('slow frames', () => {
  it('a client trickling one frame a byte at a time is closed with TIMEOUT', async () => {
    const c = await open();
    const req = frame(1, 'SET', 'k', Buffer.alloc(200, 1));
    let sent = 0;
    const started = Date.now();
    let closedAt = 0;
    void c.closed.then(() => (closedAt = Date.now()));
    while (!closedAt && sent < req.length && Date.now() - started < 5000) {
      c.socket.write(req.subarray(sent, sent + 1));
      sent++;
      await sleep(50);
    }
    await c.closed;
    expect(sent).toBeLessThan(req.length); // cut before it could finish
    expect(closedAt - started).toBeLessThan(FRAME_TIMEOUT_MS + 1500);
    const last = frames(c.received()).at(-1) as [null, null, { code: string; message: string }];
    expect(last[0]).toBeNull();
    expect(last[2].code).toBe('TIMEOUT');
    expect(last[2].message).toMatch(/not completed within/);
    expect(store.has('k')).toBe(false);
  });

  it('a client that keeps completing frames, each split across writes, stays connected past the timeout', async () => {
    const c = await open();
    let closed = false;
    void c.closed.then(() => (closed = true));
    const started = Date.now();
    let id = 1;
    // Every write ends mid-frame, but frames keep completing: progress restarts the clock.
    const stream = Buffer.concat(Array.from({ length: 60 }, () => frame(id++, 'PING')));
    for (let at = 0; at < stream.length && !closed; at += 7) {
      c.socket.write(stream.subarray(at, at + 7));
      await sleep(40);
    }
    expect(Date.now() - started).toBeGreaterThan(FRAME_TIMEOUT_MS * 2);
    expect(closed).toBe(false);
    await sleep(100);
    const replies = frames(c.received()) as [number, unknown][];
    expect(replies.length).toBeGreaterThan(50);
    expect(replies.every((r) => r[0] !== null)).toBe(true);
    c.socket.destroy();
  });

  it('a connection that sends nothing is not cut by the frame timeout', async () => {
    const c = await open();
    let closed = false;
    void c.closed.then(() => (closed = true));
    await sleep(FRAME_TIMEOUT_MS * 2);
    expect(closed).toBe(false);
    c.socket.write(frame(7, 'PING'));
    await sleep(100);
    expect((frames(c.received())[0] as [number, unknown])[0]).toBe(7);
    c.socket.destroy();
  });
});
