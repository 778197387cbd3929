/**
 * Issue 11 A, reproduced on a real kv-server: `interval` mode with small
 * segments and an eager compactor (the settings, with a 5 ms fsync
 * tick instead of 1 s so the race comes in seconds, not minutes) and 64 SETs
 * in flight. The periodic fsync used to hit a segment that a compaction had
 * just closed (EBADF), after which every write was refused until restart.
 * Now: no write is refused, no `fsync failed` line, compactions do run, and
 * after a SIGKILL every acknowledged write is there.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KvClient } from '../../src/index.js';
import { removeTempDirs, tempDir } from '../engine/helpers.js';
import { buildServer, cleanup, startServer } from './server-build.js';

const FLAGS = [
  '--fsync',
  'interval',
  '--fsync-interval-ms',
  '5',
  '--max-segment-bytes',
  '262144',
  '--compaction-min-dead-ratio',
  '0.05',
  '--compaction-min-interval-ms',
  '0',
  '--compaction-check-interval-ms',
  '20',
  '--compaction-min-dead-bytes',
  '1',
];
const IN_FLIGHT = 64;
const KEYS = 500;
const RUN_MS = 5000;

let main: string;
beforeAll(() => {
  main = buildServer();
}, 60_000);
afterAll(() => {
  cleanup();
  removeTempDirs();
});

describe('interval mode under eager compaction (spawned kv-server)', () => {
  it('no write is refused and no fsync fails while compactions retire segments; nothing acknowledged is lost', async () => {
    const dir = tempDir();
    const server = await startServer(main, dir, FLAGS);
    const client = new KvClient({
      host: '127.0.0.1',
      port: server.port,
      reconnect: false,
      requestTimeoutMs: 10_000,
    });
    const acked = new Map<string, number>();
    const refused: string[] = [];
    let seq = 0;
    const until = Date.now() + RUN_MS;
    const pad = 'p'.repeat(900);
    const lane = async () => {
      while (Date.now() < until && refused.length === 0) {
        const n = seq++;
        const key = `k${n % KEYS}`;
        try {
          await client.set(key, `${n}|${pad}`);
          if ((acked.get(key) ?? -1) < n) acked.set(key, n);
        } catch (err) {
          refused.push(`${(err as { code?: string }).code}: ${(err as Error).message}`);
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
      expect(refused.slice(0, 3), server.stderr().slice(-3000)).toEqual([]);
      const info = (await client.info('compaction')) as { compaction: { runs: number } };
      expect(info.compaction.runs).toBeGreaterThan(3);
    } finally {
      await client.close().catch(() => {});
    }
    expect(server.stderr()).not.toMatch(/fsync failed/);
    expect(seq).toBeGreaterThan(2000);
    // SIGKILL, restart: every acknowledged write is there (the OS had every byte).
    server.proc.kill('SIGKILL');
    await server.stop();
    const again = await startServer(main, dir, FLAGS);
    const reader = new KvClient({
      host: '127.0.0.1',
      port: again.port,
      reconnect: false,
      requestTimeoutMs: 10_000,
    });
    try {
      const keys = [...acked.keys()];
      const values = await reader.mget(keys);
      keys.forEach((k, i) => {
        const got = Number(String(values[i]).split('|')[0]);
        expect(got, k).toBeGreaterThanOrEqual(acked.get(k)!);
      });
    } finally {
      await reader.close().catch(() => {});
      await again.stop();
    }
  }, 60_000);
});
