/**
 * Replication.waitForAcks (WAIT, --min-replicas-ack): waiters kept in offset
 * order and woken from the front by ACKs, one timer for all timeouts. A
 * waiter resolves as soon as enough replicas acknowledged its offset, with
 * how many did; a waiter needing more replicas stays while later ones are
 * woken; a timeout resolves with the count then, not before its deadline.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { openStore } from '../../src/engine/store.js';
import type { FeedStream } from '../../src/replication/feed.js';
import { Replication } from '../../src/replication/replication.js';
import { removeTempDirs, silentLogger, tempDir } from '../engine/helpers.js';

afterEach(removeTempDirs);

/** A replica's feed as the waiters see it: its port (a replica) and what it acknowledged. */
function fakeReplica(repl: Replication, acked: number): { acked: number } {
  const f = { replicaPort: 1, acked, end: () => repl.feeds.delete(f) } as unknown as FeedStream;
  repl.feeds.add(f);
  return f;
}

const ack = (repl: Replication) => (repl as unknown as { onAck(): void }).onAck();

describe('ack waiters', () => {
  it('wake in offset order as ACKs arrive, each with how many replicas have its writes; timeouts resolve late, never early', async () => {
    const store = await openStore(tempDir(), { logger: silentLogger });
    const repl = new Replication(store, silentLogger);
    const done = new Map<string, number>();
    const doneAt = new Map<string, number>();
    const track = (name: string, p: Promise<number>) =>
      void p.then((n) => {
        done.set(name, n);
        doneAt.set(name, Date.now());
      });
    const a = fakeReplica(repl, 0);
    track('w10', repl.waitForAcks(1, 0, 10));
    track('w20', repl.waitForAcks(1, 0, 20));
    track('w30', repl.waitForAcks(1, 0, 30));
    track('two@5', repl.waitForAcks(2, 0, 5)); // an older offset, inserted before the others
    const started = Date.now();
    track('t40', repl.waitForAcks(1, 150, 40));
    await Promise.resolve();
    expect(done.size).toBe(0);
    a.acked = 20;
    ack(repl);
    await new Promise((r) => setImmediate(r));
    expect([...done].sort()).toEqual([
      ['w10', 1],
      ['w20', 1],
    ]);
    const b = fakeReplica(repl, 30);
    ack(repl);
    await new Promise((r) => setImmediate(r));
    expect(done.get('two@5')).toBe(2);
    expect(done.get('w30')).toBe(1);
    expect(done.has('t40')).toBe(false);
    // Already held: answered at once.
    expect(await repl.waitForAcks(2, 0, 20)).toBe(2);
    // The timeout: no replica reaches 40; it resolves with 0 after its 150 ms, not before
    // (timed by when it resolved, not by when this test looks: a loaded machine may
    // run this test's own timers late).
    for (let waited = 0; !done.has('t40') && waited < 5_000; waited += 10) {
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(done.get('t40')).toBe(0);
    expect(doneAt.get('t40')! - started).toBeGreaterThanOrEqual(150);
    // Close resolves whoever still waits, with the count then (its feeds are closed first: 0).
    b.acked = 60;
    const last = repl.waitForAcks(2, 0, 50);
    await repl.close();
    expect(await last).toBe(0);
    await store.close();
  });

  it('many writes waiting: an ACK wakes exactly those at or below it', async () => {
    const store = await openStore(tempDir(), { logger: silentLogger });
    const repl = new Replication(store, silentLogger);
    const r = fakeReplica(repl, 0);
    let woken = 0;
    for (let i = 1; i <= 5000; i++) void repl.waitForAcks(1, 10_000, i).then(() => woken++);
    for (const upTo of [1, 999, 2500, 5000]) {
      r.acked = upTo;
      ack(repl);
      await new Promise((res) => setImmediate(res));
      expect(woken).toBe(upTo);
    }
    await repl.close();
    await store.close();
  });
});
