/**
 * RESP writes share the store's per-tick ack (acked-write.ts): the plain
 * SETs of one tick answer the same TickAck (so a pipeline of them joins one
 * reply slot of the connection, as native SETs do), other writes that ack
 * with their reply (also when a condition refused them: SET NX, MSETNX,
 * EXPIRE XX), and a pipeline of SETs and GETs over a real socket is
 * still answered in order. Only where the connection may wait on the ack
 * itself (untimed, outside a cluster, without --min-replicas-ack) does
 * execute hand it out; otherwise a promise of the reply.
 */
import { Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/engine/index.js';
import { TickAck } from '../../src/engine/tick-ack.js';
import { OK } from '../../src/resp/reply.js';
import { execute, RESP_COMMANDS } from '../../src/resp/table.js';
import { AckedReply } from '../../src/server/acked-write.js';
import { removeTempDirs, silentLogger, tempDir } from '../engine/helpers.js';
import { type ServerProcess, spawnServer } from '../server/spawn.js';

afterAll(removeTempDirs);

const argv = (...xs: string[]) => xs.map((x) => Buffer.from(x));

describe('RESP SET and the per-tick ack', () => {
  it('plain SETs of one tick answer the same tick ack; a SET with options its ack and reply', async () => {
    const store = await openStore(tempDir(), { logger: silentLogger, fsync: 'never' });
    try {
      const set = RESP_COMMANDS.get('set')!;
      const s = { store } as never;
      const a = set.run(s, argv('set', 'a', '1'));
      const b = set.run(s, argv('set', 'b', '2'));
      expect(a).toBeInstanceOf(TickAck);
      expect(b).toBe(a);
      // With an option: the same tick's ack, with its own reply (NX may answer nil).
      const c = set.run(s, argv('set', 'c', '3', 'NX'));
      expect(c).toBeInstanceOf(AckedReply);
      expect((c as AckedReply).ack).toBe(a);
      expect((c as AckedReply).value).toBe(OK);
      // Refused by NX (c exists, written this tick): no write, but the reply waits for the same ack,
      // so it never tells of a key whose write may yet be lost. So do MSETNX and EXPIRE NX.
      const refused = set.run(s, argv('set', 'c', 'other', 'NX'));
      expect(refused).toBeInstanceOf(AckedReply);
      expect((refused as AckedReply).ack).toBe(a);
      expect((refused as AckedReply).value).toBeNull();
      const msetnx = RESP_COMMANDS.get('msetnx')!.run(s, argv('msetnx', 'z', '1', 'c', '2')) as AckedReply;
      expect([msetnx.ack, msetnx.value]).toEqual([a, 0]);
      const expire = RESP_COMMANDS.get('expire')!.run(s, argv('expire', 'c', '100', 'XX')) as AckedReply;
      expect([expire.ack, expire.value]).toEqual([a, 0]);
      await (a as TickAck).promise();
      const d = set.run(s, argv('set', 'a', '4'));
      expect(d).not.toBe(a);
      await (d as TickAck).promise();
      expect(store.getSync('a')?.toString()).toBe('4');
      expect(store.getSync('b')?.toString()).toBe('2');
      expect(store.getSync('c')?.toString()).toBe('3');
    } finally {
      await store.close();
    }
  });

  it("execute hands out a write's tick ack only when asked (the connection's repliesOnTickAck), else a promise of its reply", async () => {
    const store = await openStore(tempDir(), { logger: silentLogger, fsync: 'never' });
    try {
      const replication = {
        minReplicasAck: 0,
        resync: { pending: false },
        replicatedAck: (ack: Promise<unknown>) => ack,
      };
      const server = { store, replication } as Record<string, unknown>;
      const s = { store, server, authenticated: true, lastWriteOffset: 0 } as never;
      const plain = execute(s, argv('set', 'a', '1'), true);
      expect(plain).toBeInstanceOf(TickAck);
      expect((s as { lastWriteOffset: number }).lastWriteOffset).toBe(store.nextOffset);
      const nx = execute(s, argv('set', 'b', '2', 'NX'), true);
      expect(nx).toBeInstanceOf(AckedReply);
      expect((nx as AckedReply).ack).toBe(plain);
      const del = execute(s, argv('del', 'a', 'zz'), true);
      expect((del as AckedReply).value).toBe(1);
      const timed = execute(s, argv('set', 'c', '3'), false); // timed, clustered or min-replicas: a promise
      expect(timed).toBeInstanceOf(Promise);
      const timedDel = execute(s, argv('del', 'c'), false);
      expect(timedDel).toBeInstanceOf(Promise);
      await (plain as TickAck).promise();
      await expect(timed).resolves.toBe(OK);
      await expect(timedDel).resolves.toBe(1);
      expect(store.getSync('a')).toBeUndefined();
      expect(store.getSync('b')?.toString()).toBe('2');
    } finally {
      await store.close();
    }
  });

  describe('over a socket', () => {
    let server: ServerProcess;
    afterAll(async () => {
      await server?.stop('SIGKILL');
    });

    it('answers 300 pipelined SETs, GETs and NX SETs in order', async () => {
      server = await spawnServer();
      const sock = new Socket();
      await new Promise<void>((resolve, reject) => {
        sock.once('error', reject);
        sock.connect(server.port, '127.0.0.1', resolve);
      });
      let got = '';
      sock.on('data', (d) => {
        got += d.toString('latin1');
      });
      const cmd = (...xs: string[]) =>
        `*${xs.length}\r\n${xs.map((x) => `$${x.length}\r\n${x}\r\n`).join('')}`;
      let out = '';
      let want = '';
      const model = new Map<string, string>();
      for (let i = 0; i < 300; i++) {
        const k = `rs:${i % 17}`;
        const v = `v${i}`;
        if (i % 3 === 2) {
          out += cmd('GET', k);
          const m = model.get(k);
          want += m === undefined ? '$-1\r\n' : `$${m.length}\r\n${m}\r\n`;
        } else if (i % 5 === 0) {
          out += cmd('SET', k, v, 'NX');
          if (model.has(k)) want += '$-1\r\n';
          else {
            model.set(k, v);
            want += '+OK\r\n';
          }
        } else {
          out += cmd('SET', k, v);
          model.set(k, v);
          want += '+OK\r\n';
        }
      }
      sock.write(out);
      const deadline = Date.now() + 10_000;
      while (got.length < want.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      sock.destroy();
      expect(got).toBe(want);
    }, 30_000);
  });
});
