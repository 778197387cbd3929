/** examples/cluster.sh starts etcd and a 3-shard × 2-node cluster as the README says, and stops it. */
import { execFile as execFileCb } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../server/spawn.js';
import { etcdAvailable, freePort } from './etcd.js';

const execFile = promisify(execFileCb);
const script = resolve(import.meta.dirname, '../../examples/cluster.sh');

describe.skipIf(!etcdAvailable)('examples/cluster.sh', () => {
  it('starts a 3-shard × 2-node cluster with a primary and a replica per shard', async () => {
    const ports = new Set<number>();
    while (ports.size < 8) ports.add(await freePort());
    const [etcdPort, etcdPeerPort, ...nodePorts] = [...ports];
    const env = {
      ...process.env,
      DIR: tempDir(),
      // Ports known free (consecutive ones may be taken by other tests' servers).
      PORTS: nodePorts.join(' '),
      ETCD_PORT: String(etcdPort),
      ETCD_PEER_PORT: String(etcdPeerPort),
    };
    try {
      const { stdout } = await execFile(script, ['start'], { env, timeout: 170_000 });
      expect(stdout).toContain('cluster demo: 3 shard(s), 16384 slots');
      for (const s of ['s1', 's2', 's3'])
        expect(stdout).toMatch(new RegExp(`shard ${s} {2}slots \\d+-\\d+ {2}ok\\n`));
      expect(stdout.match(/^ {2}replica /gm)).toHaveLength(3);
    } finally {
      await execFile(script, ['stop'], { env, timeout: 10_000 });
    }
  }, 180_000);
});
