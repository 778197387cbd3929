/** What the cluster tests share: waiting for a condition, and spawning a cluster node. */
import { type ServerProcess, spawnServer } from '../server/spawn.js';

/**
 * Polls `probe` until it returns something other than undefined (a thrown
 * error counts as "not yet"), and returns that; fails after `timeoutMs`.
 */
export async function until<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await Promise.resolve()
      .then(probe)
      .catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface NodeSpec {
  etcd: string;
  cluster: string;
  shard: string;
  name: string;
  leaseMs: number;
  /** More kv-server flags. */
  args?: string[];
  /** Data directory (a restart reuses it); default a fresh one. */
  dir?: string;
}

/** A kv-server process in cluster mode. */
export function clusterNode(n: NodeSpec): Promise<ServerProcess> {
  return spawnServer({
    args: [
      ...['--cluster', n.cluster, '--etcd', n.etcd, '--shard', n.shard, '--node-name', n.name],
      ...['--cluster-lease-ms', String(n.leaseMs), ...(n.args ?? [])],
    ],
    ...(n.dir !== undefined && { dir: n.dir }),
  });
}
