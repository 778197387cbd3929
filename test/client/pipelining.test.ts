/**
 * The SDK against a scripted server speaking our framing: commands issued in
 * the same tick leave in one write, and a reply that does not match the
 * oldest request drops the connection instead of resolving the wrong promise.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { KvClient, type KvError } from '../../src/index.js';
import { encodeFrame, FrameReader, unpackr } from '../../src/protocol/frame.js';

let server: Server | undefined;
afterEach(() => {
  server?.close();
  server = undefined;
});

/** What a segkv server answers to HELLO (the client's handshake). */
const HELLO_REPLY = {
  server: 'segkv',
  version: '0.0.0-test',
  protocol: 1,
  authRequired: false,
  authenticated: true,
  maxFrameBytes: 1 << 20,
  commands: ['HELLO', 'PING', 'GET', 'SET'],
};

/**
 * Starts a server that answers HELLO as segkv does, then each request with
 * `answer(request)`; counts the chunks and requests it receives after HELLO.
 */
async function scripted(
  answer: (req: unknown[], socket: Socket) => unknown[] | undefined,
  commands: string[] = HELLO_REPLY.commands,
) {
  const stats = { chunks: 0, requests: 0 };
  server = createServer((socket) => {
    const reader = new FrameReader(1 << 20);
    let greeted = false;
    socket.on('data', (chunk: Buffer) => {
      if (greeted) stats.chunks++;
      reader.push(chunk);
      for (let b = reader.next(); b; b = reader.next()) {
        const req = unpackr.unpack(b) as unknown[];
        if (!greeted && req[1] === 'HELLO') {
          greeted = true;
          socket.write(encodeFrame([req[0], { ...HELLO_REPLY, commands }]));
          continue;
        }
        if (req[1] === 'QUIT') {
          socket.end(encodeFrame([req[0], true]));
          continue;
        }
        stats.requests++;
        const reply = answer(req, socket);
        if (reply) socket.write(encodeFrame(reply));
      }
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
  const port = (server!.address() as { port: number }).port;
  return { port, stats };
}

describe('pipelining', () => {
  it('commands issued in the same tick go out in one write', async () => {
    const { port, stats } = await scripted((req) => [req[0], 'PONG']);
    const c = new KvClient({ port, reconnect: false });
    await c.ready();
    const replies = await Promise.all(Array.from({ length: 200 }, () => c.ping()));
    expect(replies.every((r) => r === 'PONG')).toBe(true);
    expect(stats.requests).toBe(200);
    expect(stats.chunks).toBe(1);
    await c.close();
  });

  it('request ids count up from 0 and replies resolve the matching command', async () => {
    const ids: number[] = [];
    const { port } = await scripted((req) => {
      ids.push(req[0] as number);
      return [req[0], Buffer.from(String(req[2]))];
    });
    const c = new KvClient({ port, reconnect: false });
    const got = await Promise.all(['a', 'b', 'c'].map((k) => c.get(k)));
    expect(got).toEqual(['a', 'b', 'c']);
    expect(ids).toEqual([1, 2, 3]); // 0 was the handshake's HELLO
    await c.close();
  });

  it('a reply with an unexpected id drops the connection with PROTOCOL_ERROR', async () => {
    const { port } = await scripted((req) => [(req[0] as number) + 100, 'PONG']);
    const c = new KvClient({ port, reconnect: false });
    const errors: string[] = [];
    c.on('error', (e) => errors.push((e as KvError).code));
    let code = '';
    try {
      await c.ping();
    } catch (err) {
      code = (err as KvError).code;
    }
    expect(code).toBe('PROTOCOL_ERROR');
    expect(errors).toContain('PROTOCOL_ERROR');
  });

  it('a fatal frame from the server rejects pending commands with its code', async () => {
    const { port } = await scripted((_req, socket) => {
      socket.end(encodeFrame([null, null, { code: 'TOO_LARGE', message: 'nope' }]));
      return undefined;
    });
    const c = new KvClient({ port, reconnect: false });
    c.on('error', () => {});
    const results = await Promise.allSettled([c.set('a', 'x'), c.get('b')]);
    expect(results.map((r) => r.status === 'rejected' && (r.reason as KvError).code)).toEqual([
      'TOO_LARGE',
      'TOO_LARGE',
    ]);
  });
});

describe('Redis TTL commands', () => {
  it('ttl/pttl/expire/pexpire go out as PTTL/PEXPIRE (ms) where HELLO lists them, else as segkv TTL/EXPIRE (ms)', async () => {
    for (const withP of [true, false]) {
      const seen: unknown[][] = [];
      const commands = withP ? ['PTTL', 'PEXPIRE', 'TTL', 'EXPIRE'] : ['TTL', 'EXPIRE'];
      const { port } = await scripted((req) => {
        seen.push(req.slice(1));
        return [req[0], req[1] === 'PTTL' || req[1] === 'TTL' ? 61_500 : true];
      }, commands);
      const c = new KvClient({ port, reconnect: false });
      expect(await c.ttl('k')).toBe(62); // seconds, rounded as Redis rounds
      expect(await c.pttl('k')).toBe(61_500);
      expect(await c.expire('k', 5)).toBe(true);
      expect(await c.pexpire('k', 250)).toBe(true);
      const [ttl, exp] = withP ? ['PTTL', 'PEXPIRE'] : ['TTL', 'EXPIRE'];
      expect(seen).toEqual([
        [ttl, 'k'],
        [ttl, 'k'],
        [exp, 'k', 5000],
        [exp, 'k', 250],
      ]);
      await c.close();
      server?.close();
    }
  });
});
