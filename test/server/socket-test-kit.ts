/**
 * What the socket-level tests (socket-reads.test.ts, socket-writes.test.ts)
 * share: a sleep, a polling wait, and cleanups run after each test (the
 * loopback servers and sockets a test opened).
 */
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
