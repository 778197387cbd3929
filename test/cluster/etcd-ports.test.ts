/**
 * The test etcd (tools/lib/etcd.ts) survives losing the race for its port:
 * a port freePort found free may be taken by another socket before etcd
 * binds it (CI saw "bind: address already in use"). A restart keeps its
 * ports and waits for them; the first start takes fresh ones.
 */
import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type EtcdProcess, etcdAvailable, startEtcd } from './etcd.js';

const started: EtcdProcess[] = [];
afterEach(async () => {
  for (const e of started.splice(0)) await e.stop();
});

function hold(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(port, '127.0.0.1', () => resolve(srv));
  });
}

describe.skipIf(!etcdAvailable)('test etcd and its ports', () => {
  it('restarts on the same port once another socket that held it lets go', async () => {
    const etcd = await startEtcd();
    started.push(etcd);
    await etcd.kill();
    const port = Number(new URL(etcd.url).port);
    const squatter = await hold(port);
    setTimeout(() => squatter.close(), 300);
    await etcd.restart();
    const c = etcd.client();
    await c.put('/after-restart').value('1');
    expect(await c.get('/after-restart').string()).toBe('1');
  }, 30_000);
});
