/**
 * The native GET path (connection.ts replyGet): a value is copied from where
 * the store holds it — the small-value cache's arena, the lru-cache, a read —
 * straight into the reply. Against a real server with a tiny cache (values
 * evicted and re-read all the time) and small segments, pipelined GETs
 * interleaved with overwrites, deletes, expiries and compactions must answer
 * exactly what a model says, in order: never a stale value, never bytes of
 * another value that moved in the arena.
 */
import { Packr } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mulberry32, seededBytes } from '../../tools/lib/prng.js';
import { rawFrame } from '../../tools/lib/raw-connection.js';
import { RawConnection, type ServerProcess, spawnServer } from './spawn.js';

const packr = new Packr({ useRecords: false, variableMapSize: true });

/** Arena of the server's small-value cache: values up to 16384 / 8 - 8 = 2040 bytes are cached. */
const SLOT_CACHE_BYTES = 16384;
const KEYS = Array.from({ length: 48 }, (_, i) => `gp:${i}`);
/** Sizes on both sides of the cache's largest value and of the lru-cache's smallest (512 B). */
const SIZES = [0, 1, 40, 64, 65, 100, 511, 700, 2040, 2041, 3000];

/** A deterministic value for (key, version, size): a stale or misplaced one never matches. */
function valueFor(key: string, version: number, n: number): Buffer {
  return seededBytes(n, version * 2654435761 + key.length * 97 + key.charCodeAt(key.length - 1));
}

let server: ServerProcess;

beforeAll(async () => {
  server = await spawnServer({
    args: [
      '--slot-cache-bytes',
      String(SLOT_CACHE_BYTES),
      '--max-segment-bytes',
      '65536',
      '--fsync',
      'never',
    ],
  });
});

afterAll(async () => {
  await server?.stop('SIGKILL');
});

describe('native GET from the small-value cache', () => {
  it('answers every pipelined GET with the latest value across overwrites, deletes, expiries, compactions and evictions', async () => {
    const c = await RawConnection.open(server.port);
    const model = new Map<string, Buffer>();
    const rand = mulberry32(15);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    let id = 0;
    let version = 0;
    let gets = 0;
    let hits = 0;
    try {
      for (let round = 0; round < 60; round++) {
        // One pipelined batch: the GETs' expected replies are the model's at their place in it.
        const requests: Buffer[] = [];
        const expected: (Buffer | null | undefined)[] = []; // undefined: a reply not checked (SET, DEL)
        const expiring: string[] = [];
        for (let i = 0; i < 40; i++) {
          const key = pick(KEYS);
          const r = rand();
          // A SET or DEL after a PEXPIRE in the same batch clears the expiry.
          if (r < 0.36 && expiring.includes(key)) expiring.splice(expiring.indexOf(key), 1);
          if (r < 0.3) {
            const v = valueFor(key, ++version, pick(SIZES));
            requests.push(rawFrame(packr.pack([id++, 'SET', key, v])));
            model.set(key, v);
            expected.push(undefined);
          } else if (r < 0.36) {
            requests.push(rawFrame(packr.pack([id++, 'DEL', key])));
            model.delete(key);
            expected.push(undefined);
          } else if (r < 0.39 && model.has(key)) {
            requests.push(rawFrame(packr.pack([id++, 'PEXPIRE', key, 1])));
            expiring.push(key);
            expected.push(undefined);
          } else {
            requests.push(rawFrame(packr.pack([id++, 'GET', key])));
            expected.push(expiring.includes(key) ? undefined : (model.get(key) ?? null));
          }
        }
        c.write(Buffer.concat(requests));
        for (let i = 0; i < expected.length; i++) {
          const reply = await c.next(10_000);
          expect(Array.isArray(reply), `round ${round} reply ${i}: ${String(reply)}`).toBe(true);
          const r = reply as unknown[];
          expect(r.length, `round ${round} reply ${i} is an error: ${JSON.stringify(r[2])}`).toBe(2);
          const want = expected[i];
          if (want === undefined) continue;
          gets++;
          if (want === null) expect(r[1], `round ${round} reply ${i}`).toBeNull();
          else {
            hits++;
            expect(Buffer.isBuffer(r[1]) || r[1] instanceof Uint8Array, `round ${round} reply ${i}`).toBe(
              true,
            );
            expect(Buffer.from(r[1] as Uint8Array).equals(want), `round ${round} reply ${i}`).toBe(true);
          }
        }
        if (expiring.length > 0) {
          // PEXPIRE 1 ms: once that has passed, every GET of those keys is nil, cached or not.
          await new Promise((resolve) => setTimeout(resolve, 20));
          for (const key of expiring) model.delete(key);
          const batch = expiring.map((key) => rawFrame(packr.pack([id++, 'GET', key])));
          c.write(Buffer.concat(batch));
          for (const key of expiring) {
            const r = (await c.next(10_000)) as unknown[];
            expect(r, `expired ${key}`).toEqual([expect.any(Number), null]);
          }
        }
        if (round % 10 === 9) {
          // A compaction moves records under the cached values: a GET after it reads the same bytes.
          c.write(rawFrame(packr.pack([id++, 'COMPACT'])));
          const r = (await c.next(30_000)) as unknown[];
          expect(Array.isArray(r), `COMPACT: ${String(r)}`).toBe(true);
        }
      }
      // Everything once more, twice (the second GET of each is a hit if the first filled the cache).
      for (let pass = 0; pass < 2; pass++) {
        c.write(Buffer.concat(KEYS.map((key) => rawFrame(packr.pack([id++, 'GET', key])))));
        for (const key of KEYS) {
          const r = (await c.next(10_000)) as unknown[];
          const want = model.get(key);
          if (want === undefined) expect(r[1], key).toBeNull();
          else expect(Buffer.from(r[1] as Uint8Array).equals(want), key).toBe(true);
        }
      }
    } finally {
      c.close();
    }
    // The run exercised both answers.
    expect(gets).toBeGreaterThan(500);
    expect(hits).toBeGreaterThan(200);
  }, 120_000);
});
