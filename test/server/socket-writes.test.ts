import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { SocketWrites, STAGE_BYTES } from '../../src/server/socket-writes.js';
import { closeAfterTest, loopbackPair, sleep, until } from './socket-test-kit.js';

closeAfterTest();

/** A loopback pair: the accepted socket (written through SocketWrites) and the client, paused (reads nothing until resumed). */
async function pair(): Promise<{ client: Socket; served: Socket; writes: SocketWrites; done: () => number }> {
  const { client, served } = await loopbackPair();
  client.pause();
  let doneCalls = 0;
  const writes = new SocketWrites(served, () => doneCalls++);
  return { client, served, writes, done: () => doneCalls };
}

/** Buffer number i of `size` bytes, every byte telling where it belongs. */
function piece(i: number, size: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  for (let j = 0; j < size; j++) b[j] = (i * 7 + j) & 0xff;
  return b;
}

/** Resumes the paused client and checks it receives exactly `sent`, concatenated, in order. */
async function expectReceived(client: Socket, sent: Buffer[]): Promise<void> {
  const total = sent.reduce((n, b) => n + b.length, 0);
  const got: Buffer[] = [];
  let gotBytes = 0;
  client.on('data', (c: Buffer) => {
    got.push(c);
    gotBytes += c.length;
  });
  client.resume();
  await until(() => gotBytes === total);
  expect(Buffer.concat(got).equals(Buffer.concat(sent))).toBe(true);
}

describe('socket writes', () => {
  it('a plain socket writes through its handle; small writes arrive whole and in order, and bytesWritten counts them', async () => {
    const { client, served, writes } = await pair();
    expect(writes.direct).toBe(true);
    const got: Buffer[] = [];
    client.on('data', (c: Buffer) => got.push(c));
    client.resume();
    const sent = [Buffer.from('one '), Buffer.from('two '), Buffer.from('three')];
    for (const b of sent) writes.write(b);
    expect(writes.pending).toBe(0);
    expect(served.writableLength).toBe(0); // nothing went through the stream
    await until(() => Buffer.concat(got).length === 13);
    expect(Buffer.concat(got).toString()).toBe('one two three');
    expect(served.bytesWritten).toBe(13); // the idle clock (idle-clock.ts) reads this
  });

  it('writes the kernel cannot take wait in libuv, counted in pending; later writes of both paths follow them in order; done once all are written', async () => {
    const { client, served, writes, done } = await pair();
    const size = 64 * 1024;
    const sent: Buffer[] = [];
    // Fill the socket buffers until libuv has to queue.
    for (let i = 0; writes.pending === 0; i++) {
      if (i > 2000) throw new Error('the kernel took 128 MiB without pushing back');
      const b = piece(i, size);
      sent.push(b);
      writes.write(b);
    }
    expect(writes.queued).toBeGreaterThan(0);
    // More direct writes line up behind the queued one ...
    for (let i = 0; i < 3; i++) {
      const b = piece(sent.length, size);
      sent.push(b);
      writes.write(b);
    }
    // ... and so does a write through the stream, and direct ones after it (they go through the stream too).
    const viaStream = piece(sent.length, 1000);
    sent.push(viaStream);
    served.write(viaStream);
    const last = piece(sent.length, 10);
    sent.push(last);
    writes.write(last);
    expect(done()).toBe(0);
    await expectReceived(client, sent);
    await until(() => writes.pending === 0 && done() === 1);
    expect(writes.queued).toBe(0);
  });

  it('writeFrom: replies copied through the stage arrive whole and in order, also when libuv queues one (the stage stays its)', async () => {
    const { client, writes } = await pair();
    // The replies lie in one memory, as in the shared output buffer; the caller never rewrites them.
    const memory = new ArrayBuffer(4 << 20);
    const bytes = new Uint8Array(memory);
    for (let j = 0; j < bytes.length; j++) bytes[j] = (j * 131 + (j >>> 12)) & 0xff;
    const sent: Buffer[] = [];
    let at = 0;
    const writeFrom = (length: number) => {
      sent.push(Buffer.from(memory, at, length));
      writes.writeFrom(memory, at, length);
      at += length;
    };
    for (const n of [1, 9, 110, 4000]) writeFrom(n);
    expect(writes.pending).toBe(0);
    // Stage-sized replies until the kernel pushes back and libuv queues one.
    while (writes.pending === 0) {
      if (at + STAGE_BYTES > memory.byteLength) throw new Error('the kernel took 4 MiB without pushing back');
      writeFrom(STAGE_BYTES);
    }
    // Later ones must not overwrite the stage the queued write still reads from.
    for (const n of [STAGE_BYTES, 9, 110, STAGE_BYTES + 1]) writeFrom(n);
    await expectReceived(client, sent);
    await until(() => writes.pending === 0);
  });

  it('writeFrom: small replies from several memories, at any offset, arrive byte for byte; a range outside the memory throws a RangeError', async () => {
    const { client, writes } = await pair();
    // Two memories in turn (the writer moving to a fresh buffer and back), odd offsets, lengths across the small-copy size.
    const memories = [new ArrayBuffer(8192), new ArrayBuffer(8192)];
    memories.forEach((m, k) => {
      const b = new Uint8Array(m);
      for (let j = 0; j < b.length; j++) b[j] = (j * 29 + k * 101 + (j >>> 8)) & 0xff;
    });
    const sent: Buffer[] = [];
    let at = 1;
    for (let n = 0; n <= 300; n += n < 12 ? 1 : 7) {
      const memory = memories[n % 2]!;
      sent.push(Buffer.from(memory, at, n));
      writes.writeFrom(memory, at, n);
      at = (at + n + 3) % 4096;
    }
    expect(() => writes.writeFrom(memories[0]!, 8190, 9)).toThrow(RangeError);
    expect(() => writes.writeFrom(memories[0]!, 8000, 300)).toThrow(RangeError);
    await expectReceived(client, sent);
  });

  it("reads the socket's handle once, not per write (Node 20's _handle getter is a megamorphic load), and stops writing directly once the socket is destroyed", async () => {
    const { client, served } = await loopbackPair();
    // Count reads of _handle: an own accessor in front of Node's, holding the same handle.
    const s = served as unknown as { _handle: unknown };
    let handle = s._handle;
    let reads = 0;
    Object.defineProperty(s, '_handle', {
      configurable: true,
      get() {
        reads++;
        return handle;
      },
      set(v) {
        handle = v;
      },
    });
    const writes = new SocketWrites(served!, () => {});
    expect(writes.direct).toBe(true);
    const readsAtStart = reads;
    const memory = new ArrayBuffer(64);
    for (let i = 0; i < 50; i++) writes.writeFrom(memory, 0, 10);
    for (let i = 0; i < 50; i++) writes.write(Buffer.from('x'));
    expect(reads - readsAtStart).toBe(0);
    let got = 0;
    client.on('data', (c: Buffer) => {
      got += c.length;
    });
    await until(() => got === 550);
    served!.destroy();
    expect(() => writes.write(Buffer.from('late'))).not.toThrow();
    expect(writes.pending).toBe(0);
  });

  it('writing to a peer that is gone closes the socket, with no exception', async () => {
    const { client, served, writes } = await pair();
    const errors: Error[] = [];
    served.on('error', (err) => errors.push(err));
    client.resetAndDestroy();
    await sleep(50);
    for (let i = 0; i < 100 && !served.destroyed; i++) {
      writes.write(piece(i, 1024));
      await sleep(5);
    }
    await until(() => served.destroyed);
    expect(errors.length).toBeLessThanOrEqual(1);
  });
});
