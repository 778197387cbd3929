/**
 * Replicas as real kv-server processes on 127.0.0.1 (issue 12 steps 2 and
 * 5): `--replica-of` follows a primary at its offsets and answers reads,
 * writes get READONLY naming the primary, a restart resumes (partial resync)
 * from the replica's own log, a replica below the primary's tombstone
 * horizon starts over from an empty directory (and no deleted key comes
 * back), REPLICAOF NO ONE promotes in a new epoch, and a former primary
 * that rejoins cuts the tail the new primary never had (KIP-101).
 */
import { describe, expect, it } from 'vitest';
import { type KvClient, KvError } from '../../src/index.js';
import { type ServerProcess, spawnServer } from '../server/spawn.js';
import { testClients, until } from './helpers.js';

const { client } = testClients(20_000);

/** Every key with its value and whether it has a TTL, in key order. */
async function contents(c: KvClient<string>): Promise<[string, string | undefined, boolean][]> {
  const keys: string[] = [];
  for await (const k of c.keys()) keys.push(k);
  keys.sort();
  const out: [string, string | undefined, boolean][] = [];
  for (const k of keys) out.push([k, await c.get(k), (await c.ttl(k)) > 0]);
  return out;
}

/** The replica has caught up with the primary's log end. */
async function caughtUp(primary: KvClient<string>, replica: KvClient<string>): Promise<void> {
  await until('the replica to catch up', async () => {
    const [p, r] = await Promise.all([primary.role(), replica.role()]);
    return r.link === 'up' && r.end === p.end;
  });
}

const SMALL = ['--max-segment-bytes', '4096', '--compaction-check-interval-ms', '3600000'];

async function pair(extra: string[] = []): Promise<{ p: ServerProcess; r: ServerProcess }> {
  const p = await spawnServer({ args: [...SMALL, ...extra] });
  const r = await spawnServer({ args: [...SMALL, ...extra, '--replica-of', `127.0.0.1:${p.port}`] });
  return { p, r };
}

describe('replicas', () => {
  it('follow the primary at its offsets, answer reads, refuse writes with READONLY naming the primary', async () => {
    const { p, r } = await pair();
    const pc = client(p.port);
    const rc = client(r.port);
    for (let i = 0; i < 300; i++) await pc.set(`k${i % 60}`, `v${i}`);
    await pc.mset({ m1: 'a', m2: 'b' });
    await pc.del(['k1', 'k2']);
    await pc.set('ttl', 'x', { ttlMs: 600_000 });
    await caughtUp(pc, rc);
    expect(await contents(rc)).toEqual(await contents(pc));
    expect(await rc.get('m2')).toBe('b');
    expect(await rc.get('k1')).toBeUndefined();
    const err = await rc.set('nope', '1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KvError);
    expect((err as KvError).code).toBe('READONLY');
    expect((err as KvError).message).toContain(`127.0.0.1:${p.port}`);
    // Same records at the same offsets: the two feeds from 0 agree.
    const [pf, rf] = await Promise.all(
      [pc, rc].map(async (c) => {
        const out: string[] = [];
        const end = (await c.role()).end;
        for await (const rec of c.feed({ from: 0 })) {
          out.push(`${rec.offset} ${rec.key} ${rec.value} ${rec.expiresAt} ${rec.batch}${rec.batchEnd}`);
          if (rec.offset >= end - 1) break;
        }
        return out;
      }),
    );
    expect(rf).toEqual(pf);
    const role = await rc.role();
    expect([role.role, role.primary, role.logId]).toEqual([
      'replica',
      `127.0.0.1:${p.port}`,
      (await pc.role()).logId,
    ]);
  }, 60_000);

  it('a restarted replica resumes from its own log (partial resync) and catches up what it missed', async () => {
    const { p, r } = await pair();
    const pc = client(p.port);
    for (let i = 0; i < 200; i++) await pc.set(`k${i % 40}`, `a${i}`);
    let rc = client(r.port);
    await caughtUp(pc, rc);
    const at = (await rc.role()).end;
    await r.stop();
    for (let i = 0; i < 200; i++) await pc.set(`k${i % 50}`, `b${i}`);
    await pc.del('k3');
    const r2 = await spawnServer({ dir: r.dir, args: [...SMALL, '--replica-of', `127.0.0.1:${p.port}`] });
    rc = client(r2.port);
    await caughtUp(pc, rc);
    expect(await contents(rc)).toEqual(await contents(pc));
    expect(r2.stderr()).toContain(`"from":${at}`);
    expect(r2.stderr()).toContain('partial resync');
    expect(r2.stderr()).not.toContain('full resync');
  }, 60_000);

  it("below the primary's tombstone horizon a replica starts over from empty: no deleted key comes back", async () => {
    const { p, r } = await pair();
    const pc = client(p.port);
    for (let i = 0; i < 100; i++) await pc.set(`gone${i}`, `v${i}`);
    let rc = client(r.port);
    await caughtUp(pc, rc);
    await r.stop();
    // While the replica is away: delete everything it has, write more, compact from the oldest
    // segment (dropping the tombstones: the horizon passes the replica's offset).
    for (let i = 0; i < 100; i++) await pc.del(`gone${i}`);
    for (let i = 0; i < 200; i++) await pc.set(`new${i % 50}`, `w${i}`);
    await pc.compact();
    expect((await pc.role()).horizon).toBeGreaterThan(100);
    const r2 = await spawnServer({ dir: r.dir, args: [...SMALL, '--replica-of', `127.0.0.1:${p.port}`] });
    rc = client(r2.port);
    await caughtUp(pc, rc);
    expect(r2.stderr()).toContain('full resync');
    expect(await rc.get('gone5')).toBeUndefined();
    expect(await rc.dbsize()).toBe(50);
    expect(await contents(rc)).toEqual(await contents(pc));
  }, 60_000);

  it('full resync while the primary keeps writing and compacting', async () => {
    const p = await spawnServer({ args: SMALL });
    const pc = client(p.port);
    for (let i = 0; i < 1500; i++) await pc.set(`k${i % 300}`, `v${i}-${'x'.repeat(i % 100)}`);
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        if (i % 5 === 0) await pc.del(`k${i % 300}`);
        else await pc.set(`k${i % 300}`, `w${i}`);
        if (i % 400 === 0) await pc.compact();
      }
    })();
    const r = await spawnServer({ args: [...SMALL, '--replica-of', `127.0.0.1:${p.port}`] });
    const rc = client(r.port);
    await new Promise((res) => setTimeout(res, 1500));
    writing = false;
    await writer;
    await caughtUp(pc, rc);
    expect(await contents(rc)).toEqual(await contents(pc));
  }, 60_000);

  it('REPLICAOF NO ONE promotes in a new epoch; the old primary rejoins, cuts its unreplicated tail and ends equal', async () => {
    const { p, r } = await pair(['--fsync', 'always']);
    const pc = client(p.port);
    const rc = client(r.port);
    for (let i = 0; i < 100; i++) await pc.set(`k${i % 30}`, `a${i}`);
    await caughtUp(pc, rc);
    const epoch = (await pc.role()).epoch;
    // The replica stops hearing from its primary (its link turned to an address where nothing
    // listens; a SIGSTOP is not enough: the kernel still buffers what the primary sends, and the
    // replica applies everything that has arrived at once): the primary's next writes are its own.
    await rc.replicaOf({ host: '127.0.0.1', port: 1 });
    for (let i = 0; i < 40; i++) await pc.set(`k${i % 30}`, `lost${i}`);
    await pc.set('only-on-old', '1');
    await p.stop('SIGKILL');
    await rc.replicaOf(null);
    const promoted = await rc.role();
    expect([promoted.role, promoted.epoch]).toEqual(['primary', epoch + 1]);
    for (let i = 0; i < 20; i++) await rc.set(`k${i}`, `b${i}`);
    await rc.del('k25');
    // The old primary comes back as a replica of the new one.
    const old = await spawnServer({
      dir: p.dir,
      args: [...SMALL, '--fsync', 'always', '--replica-of', `127.0.0.1:${r.port}`],
    });
    const oc = client(old.port);
    await caughtUp(rc, oc);
    expect(old.stderr()).toContain('truncating a divergent tail');
    expect(old.stderr()).not.toContain('full resync');
    expect(await oc.get('only-on-old')).toBeUndefined();
    expect(await contents(oc)).toEqual(await contents(rc));
    expect((await oc.role()).epoch).toBe(epoch + 1);
  }, 60_000);
});
