/**
 * What the socket-level tests (socket-reads.test.ts, socket-writes.test.ts)
 * share: a loopback socket pair, a sleep, a polling wait, and cleanups run
 * after each test (the loopback servers and sockets a test opened).
 */
import { once } from 'node:events';
import { type AddressInfo, connect, createServer, type ServerOpts, type Socket } from 'node:net';
import { afterEach } from 'vitest';

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves once `check()` holds; throws after `ms`. */
export async function until(check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await sleep(5);
  }
}

/** Cleanups of the running test: call `closeAfterTest` in a test file to have them run after each test. */
export const cleanups: (() => void)[] = [];

export function closeAfterTest(): void {
  afterEach(() => {
    for (const c of cleanups.splice(0)) c();
  });
}

/**
 * A connected pair on 127.0.0.1: the client and the socket the server
 * accepted (handed to `accepted` first, as it arrives), closed after the
 * test (closeAfterTest).
 */
export async function loopbackPair(
  options: ServerOpts = {},
  accepted: (s: Socket) => void = () => {},
): Promise<{ client: Socket; served: Socket }> {
  let served: Socket | undefined;
  const server = createServer(options, (s) => {
    served = s;
    accepted(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
  cleanups.push(() => {
    client.destroy();
    served?.destroy();
    server.close();
  });
  await once(client, 'connect');
  await until(() => served !== undefined);
  return { client, served: served! };
}
