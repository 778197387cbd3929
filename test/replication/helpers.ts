/**
 * Shared by the replication tests: SDK clients that are closed after each
 * test, and polling until a condition holds.
 */
import { afterEach } from 'vitest';
import { KvClient } from '../../src/index.js';

/**
 * Clients for this test file: `client(port)` makes one, `track(c)` adopts one
 * made otherwise; every one is closed after each test.
 */
export function testClients(requestTimeoutMs = 30_000): {
  client: (port: number) => KvClient<string>;
  track: <C extends { close(): Promise<void> }>(c: C) => C;
} {
  const open: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    for (const c of open.splice(0)) await c.close();
  });
  const track = <C extends { close(): Promise<void> }>(c: C): C => {
    open.push(c);
    return c;
  };
  return {
    client: (port) => track(new KvClient<string>({ port, reconnect: false, requestTimeoutMs })),
    track,
  };
}

/** Polls `pred` every 20 ms until it holds; throws naming `what` after `ms`. */
export async function until(
  what: string,
  pred: () => Promise<boolean> | boolean,
  ms = 15_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
