/**
 * cancelWatch on a real, private etcd: a node that stops while etcd does not
 * answer (SIGSTOP: the connection stays open, nothing comes back) drops its
 * watch after the bound instead of waiting for etcd's confirmation forever,
 * which is what etcd3's own cancel does.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cancelWatch } from '../../src/cluster/etcd-client.js';
import { type EtcdProcess, etcdAvailable, startEtcd } from './etcd.js';

describe.skipIf(!etcdAvailable)('cancelWatch', () => {
  let etcd: EtcdProcess;

  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    etcd?.signal('SIGCONT');
    await etcd?.stop();
  });

  it('answers at once while etcd answers, and after its bound while etcd is silent', async () => {
    const client = etcd.client();
    const live = await client.watch().key('k1').create();
    let t0 = Date.now();
    await cancelWatch(live, 5_000);
    expect(Date.now() - t0, 'etcd confirmed the cancel').toBeLessThan(4_000);

    const w = await client.watch().key('k2').create();
    etcd.signal('SIGSTOP');
    try {
      let ownCancelDone = false;
      void w.cancel().then(
        () => (ownCancelDone = true),
        () => (ownCancelDone = true),
      );
      t0 = Date.now();
      await cancelWatch(w, 1_000);
      const ms = Date.now() - t0;
      expect(ms).toBeGreaterThanOrEqual(990);
      expect(ms).toBeLessThan(4_000);
      expect(ownCancelDone, "etcd3's own cancel still waits for the silent etcd").toBe(false);
    } finally {
      etcd.signal('SIGCONT');
    }
    expect(await cancelWatch(undefined, 1_000)).toBeUndefined();
  });
});
