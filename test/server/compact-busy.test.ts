/**
 * A second COMPACT while one runs answers BUSY at once, as PROTOCOL.md §6
 * says (issue 11, item 8: it waited, then ran a whole compaction of its own),
 * from another connection; the first completes, and COMPACT works again after.
 */
import { Packr } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawFrame } from '../../tools/lib/raw-connection.js';
import { RawConnection, type ServerProcess, spawnServer } from './spawn.js';

const packr = new Packr({ useRecords: false, variableMapSize: true });

let server: ServerProcess;

beforeAll(async () => {
  server = await spawnServer({
    args: ['--max-segment-bytes', String(1 << 20), '--compaction-min-dead-ratio', '1'],
  });
  // ~24 MiB of records, two thirds of them overwritten: a compaction with real work to do.
  const c = await RawConnection.open(server.port);
  const value = Buffer.alloc(4096, 0x62);
  let id = 0;
  for (let round = 0; round < 3; round++) {
    for (let batch = 0; batch < 20; batch++) {
      const args: unknown[] = [];
      for (let i = 0; i < 100; i++) args.push(`k${batch * 100 + i}`, value);
      c.write(rawFrame(packr.pack([++id, 'MSET', ...args])));
    }
  }
  for (let i = 0; i < id; i++) expect(await c.next(30_000)).toEqual([i + 1, true]);
  c.close();
}, 120_000);

afterAll(async () => {
  await server?.stop('SIGKILL');
});

describe('COMPACT while a compaction runs', () => {
  it('the second COMPACT, from another connection, gets BUSY; the first completes', async () => {
    const a = await RawConnection.open(server.port);
    const b = await RawConnection.open(server.port);
    a.write(rawFrame(packr.pack([1, 'COMPACT'])));
    await new Promise((r) => setTimeout(r, 5));
    b.write(rawFrame(packr.pack([2, 'COMPACT'])));
    const second = await b.next(30_000);
    expect(second).toMatchObject([2, null, { code: 'BUSY' }]);
    const first = await a.next(60_000);
    expect(Array.isArray(first) && first.length).toBe(2);
    expect(first).toMatchObject([1, {}]);
    // Not stuck: once the first is done, COMPACT runs again.
    b.write(rawFrame(packr.pack([3, 'COMPACT'])));
    const third = await b.next(60_000);
    expect(Array.isArray(third) && third.length).toBe(2);
    a.close();
    b.close();
  }, 120_000);
});
