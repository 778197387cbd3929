/**
 * How the SDK connects: connect() resolves once a segkv server answered
 * HELLO, and rejects fast with the real cause otherwise — a refused port, a
 * peer that is not segkv (HTTP, RESP, silence), a TLS mismatch (in
 * client.test.ts, against a real TLS kv-server). lazyConnect defers the
 * connection to the first command. Peers are real sockets on 127.0.0.1.
 */
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Server } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { connect, KvClient, type KvError } from '../../src/index.js';
import { spawnServer } from '../server/spawn.js';

const servers: { close(): void }[] = [];
afterAll(() => {
  for (const s of servers) s.close();
});

async function listen(server: Server | ReturnType<typeof createHttpServer>): Promise<number> {
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return (server.address() as { port: number }).port;
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function failure(p: Promise<unknown>): Promise<{ err: KvError; ms: number }> {
  const t0 = Date.now();
  try {
    await p;
  } catch (err) {
    return { err: err as KvError, ms: Date.now() - t0 };
  }
  throw new Error('expected a rejection');
}

describe('connect()', () => {
  it('resolves once a segkv server answered HELLO: the client is ready', async () => {
    const s = await spawnServer();
    try {
      const c = await connect({ port: s.port });
      expect(c.status).toBe('ready');
      expect(c.server?.server).toBe('segkv');
      expect(c.server?.maxFrameBytes).toBeGreaterThan(1024);
      await c.close();
    } finally {
      await s.stop();
    }
  });

  it('rejects at once with ECONNREFUSED, not a request timeout', async () => {
    const port = await closedPort();
    const { err, ms } = await failure(connect({ port }));
    expect(err.code).toBe('CONNECTION_FAILED');
    expect(err.message).toMatch(/ECONNREFUSED/);
    expect(err.message).toContain(`127.0.0.1:${port}`);
    expect(ms).toBeLessThan(2000);
  });

  it('an HTTP server is "not a segkv server", said at once', async () => {
    const port = await listen(createHttpServer((_req, res) => res.end('hi')));
    const { err, ms } = await failure(connect({ port }));
    expect(err.code).toBe('CONNECTION_FAILED');
    expect(err.message).toMatch(/is not a segkv server: it is an HTTP server \(it answered "HTTP\/1\.1 400/);
    expect(ms).toBeLessThan(2000);
  });

  it('a server answering in RESP (Redis) is "not a segkv server"', async () => {
    const port = await listen(
      createServer((socket) => {
        socket.once('data', () =>
          socket.write("-ERR unknown command '\\x00', with args beginning with:\r\n"),
        );
        socket.on('error', () => {});
      }),
    );
    const { err } = await failure(connect({ port }));
    expect(err.code).toBe('CONNECTION_FAILED');
    expect(err.message).toMatch(
      /not a segkv server: it answers in RESP, as Redis does \("-ERR unknown command/,
    );
  });

  it('a silent peer fails after helloTimeoutMs with "not a segkv server"', async () => {
    const port = await listen(createServer((socket) => socket.on('error', () => {})));
    const { err, ms } = await failure(connect({ port, helloTimeoutMs: 500 }));
    expect(err.code).toBe('CONNECTION_FAILED');
    expect(err.message).toMatch(/not a segkv server: it sent no reply to HELLO within 500 ms/);
    expect(ms).toBeGreaterThanOrEqual(450);
    expect(ms).toBeLessThan(3000);
  });

  it('a client that cannot connect says why in its TIMEOUT, and its error event', async () => {
    const port = await closedPort();
    const c = new KvClient({ port, requestTimeoutMs: 400, retryMinDelayMs: 50, retryMaxDelayMs: 100 });
    const errors: string[] = [];
    c.on('error', (e) => errors.push(e.message));
    const err = await c.get('x').catch((e: KvError) => e);
    expect((err as KvError).code).toBe('TIMEOUT');
    expect((err as KvError).message).toMatch(/was not sent within 400 ms: not connected .*ECONNREFUSED/);
    expect(errors.some((m) => /ECONNREFUSED/.test(m))).toBe(true);
    await c.close();
  });

  it('lazyConnect: resolves without connecting; the first command connects', async () => {
    let connections = 0;
    const s = await spawnServer();
    try {
      const c = await connect({ port: s.port, lazyConnect: true });
      expect(c.status).toBe('wait');
      const probe = await connect({ port: s.port });
      connections = ((await probe.info('clients')).clients as { connected: number }).connected;
      expect(connections).toBe(1); // only the probe
      expect(await c.set('lazy', 'yes')).toBe(true);
      expect(c.status).toBe('ready');
      expect(await probe.get('lazy')).toBe('yes');
      await Promise.all([c.close(), probe.close()]);
      // Nothing listens: a lazy client still resolves, its first command says why it failed.
      await s.stop();
      const lazy = await connect({ port: s.port, lazyConnect: true, reconnect: false });
      expect(((await lazy.get('x').catch((e: KvError) => e)) as KvError).code).toBe('CONNECTION_FAILED');
    } finally {
      await s.stop();
    }
  });
});
