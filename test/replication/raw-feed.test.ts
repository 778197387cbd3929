/**
 * The raw feed between real kv-server processes: a replica checks every
 * record's CRC in the runs its primary sends (the primary serves its
 * segments' bytes unchecked), so a record damaged on the primary's disk is
 * refused with a CORRUPTION error in the replica's log and nothing of its
 * run is applied; once the damage is gone the replica catches up and holds
 * exactly the primary's data.
 */
import { closeSync, openSync, readdirSync, readFileSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { spawnServer } from '../server/spawn.js';
import { testClients, until } from './helpers.js';

const { client } = testClients(20_000);

const SMALL = ['--max-segment-bytes', '4096', '--compaction-check-interval-ms', '3600000'];

/** Flips one byte of the first occurrence of `text` in the directory's segments; returns an undo. */
function damage(dir: string, text: string): () => void {
  for (const name of readdirSync(dir).filter((n) => n.endsWith('.seg'))) {
    const path = join(dir, name);
    const at = readFileSync(path).indexOf(text);
    if (at < 0) continue;
    const fd = openSync(path, 'r+');
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, at);
    const original = b[0]!;
    writeSync(fd, Buffer.from([original ^ 0x20]), 0, 1, at);
    closeSync(fd);
    return () => {
      const fd2 = openSync(path, 'r+');
      writeSync(fd2, Buffer.from([original]), 0, 1, at);
      closeSync(fd2);
    };
  }
  throw new Error(`${text} is in no segment of ${dir}`);
}

describe('raw feed', () => {
  it('a record damaged on the primary is refused by the replica (CORRUPTION, nothing of its run applied); repaired, the replica catches up equal', async () => {
    const p = await spawnServer({ args: SMALL });
    const pc = client(p.port);
    for (let i = 0; i < 300; i++) await pc.set(`k${i}`, `v${i}-marker`);
    const end = (await pc.role()).end;
    expect(end).toBe(300);
    const repair = damage(p.dir, 'v150-marker'); // the value of the record at offset 150
    const r = await spawnServer({ args: [...SMALL, '--replica-of', `127.0.0.1:${p.port}`] });
    const rc = client(r.port);
    await until('the replica to refuse the damaged run', () => /failing its CRC/.test(r.stderr()));
    expect(r.stderr()).toMatch(/offset 150\) failing its CRC/);
    // It keeps retrying, and never applies the damaged record or anything after it.
    for (let t = 0; t < 10; t++) {
      expect((await rc.role()).end).toBeLessThanOrEqual(150);
      await new Promise((res) => setTimeout(res, 100));
    }
    repair();
    await until('the replica to catch up', async () => {
      const role = await rc.role();
      return role.link === 'up' && role.end === end;
    });
    for (const i of [0, 149, 150, 151, 299]) expect(await rc.get(`k${i}`)).toBe(`v${i}-marker`);
    await p.stop();
    await r.stop();
  }, 60_000);
});
