/**
 * RESP SET shares the store's per-tick ack: the plain SETs of one tick get
 * one OK promise (so a pipeline of them joins one reply slot of the
 * connection, as native SETs do), and a pipeline of SETs and GETs over a
 * real socket is still answered in order. An untimed plain SET outside a
 * cluster and without --min-replicas-ack hands the connection the store's
 * tick ack itself (no promise: its +OK leaves in the flush's turn).
 */
import { Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/engine/index.js';
import { TickAck } from '../../src/engine/tick-ack.js';
import { OK } from '../../src/resp/reply.js';
import { execute, RESP_COMMANDS } from '../../src/resp/table.js';
import { removeTempDirs, silentLogger, tempDir } from '../engine/helpers.js';
import { type ServerProcess, spawnServer } from '../server/spawn.js';

afterAll(removeTempDirs);

const argv = (...xs: string[]) => xs.map((x) => Buffer.from(x));

describe('RESP SET and the per-tick ack', () => {
  it('plain SETs of one tick get the same OK promise; the next tick a new one', async () => {
    const store = await openStore(tempDir(), { logger: silentLogger, fsync: 'never' });
    try {
      const set = RESP_COMMANDS.get('set')!;
      const s = { store } as never;
      const a = set.run(s, argv('set', 'a', '1'));
      const b = set.run(s, argv('set', 'b', '2'));
      expect(a).toBeInstanceOf(Promise);
      expect(b).toBe(a);
      // With an option it is a promise of its own (NX may answer nil).
      const c = set.run(s, argv('set', 'c', '3', 'NX'));
      expect(c).not.toBe(a);
      expect(await a).toBe(OK);
      expect(await c).toBe(OK);
      const d = set.run(s, argv('set', 'a', '4'));
      expect(d).not.toBe(a);
      expect(await d).toBe(OK);
      expect(store.getSync('a')?.toString()).toBe('4');
      expect(store.getSync('b')?.toString()).toBe('2');
    } finally {
      await store.close();
    }
  });

  it('execute gives a plain SET the tick ack only when asked, outside a cluster and without --min-replicas-ack', async () => {
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
      expect(execute(s, argv('set', 'b', '2', 'NX'), true)).toBeInstanceOf(Promise);
      expect(execute(s, argv('set', 'c', '3'), false)).toBeInstanceOf(Promise); // timed: the promise path
      replication.minReplicasAck = 1;
      expect(execute(s, argv('set', 'd', '4'), true)).toBeInstanceOf(Promise);
      replication.minReplicasAck = 0;
      server.ackRefusal = () => undefined;
      expect(execute(s, argv('set', 'e', '5'), true)).toBeInstanceOf(Promise);
      await (plain as TickAck).promise();
      expect(store.getSync('a')?.toString()).toBe('1');
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
