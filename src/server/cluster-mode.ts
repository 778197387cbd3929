/**
 * kv-server in a cluster (`--cluster NAME --etcd URL[,URL] --shard ID`): the
 * settings checked together, the gate that refuses keyed commands while the
 * node joins, and the join itself — an etcd client, a ClusterNode
 * (src/cluster/node.ts) driving this server's replication, attached to the
 * server's request paths. The etcd client and the cluster node are imported
 * only when a node joins: a standalone server never loads etcd3 and gRPC
 * (~25 MiB of RSS; test/server/lazy-cluster.test.ts).
 */
import type { Logger } from 'pino';
import { checkName } from '../cluster/etcd-keys.js';
import type { ClusterGate, ClusterNode } from '../cluster/node.js';
import { KvError } from '../errors.js';
import { parsePrimaryAddress } from '../replication/replica.js';
import type { ServerConfig } from './config.js';
import { SetupError } from './preflight.js';
import type { KvServer } from './server.js';

/** How long a call to etcd may take before it counts as failed (joining, topology reads). */
const ETCD_CALL_TIMEOUT_MS = 3_000;

export interface ClusterSettings {
  readonly cluster: string;
  readonly etcd: readonly string[];
  readonly shard: string;
  readonly nodeName: string | undefined;
  readonly announce: { host: string; port: number } | undefined;
  readonly leaseTtlMs: number;
}

/** The cluster settings, or undefined outside cluster mode; throws naming the setting that is wrong. */
export function clusterSettingsOf(config: ServerConfig): ClusterSettings | undefined {
  const { cluster, etcd, shard } = config;
  if (cluster === undefined) {
    for (const [flag, v] of [
      ['--etcd', etcd],
      ['--shard', shard],
      ['--node-name', config.nodeName],
      ['--announce', config.announce],
    ] as const)
      if (v !== undefined)
        throw new KvError('INVALID_ARGUMENT', `${flag} is for cluster mode; add --cluster NAME`);
    return undefined;
  }
  if (etcd === undefined) throw new KvError('INVALID_ARGUMENT', '--cluster needs --etcd URL[,URL...]');
  if (shard === undefined)
    throw new KvError('INVALID_ARGUMENT', '--cluster needs --shard ID (kv-cluster status lists them)');
  if (config.replicaOf !== undefined)
    throw new KvError(
      'INVALID_ARGUMENT',
      "--replica-of is not for cluster mode: etcd chooses each shard's primary",
    );
  if (config.clusterLeaseMs % 1000 !== 0)
    throw new KvError(
      'INVALID_ARGUMENT',
      `--cluster-lease-ms must be whole seconds (etcd's unit), got ${config.clusterLeaseMs}`,
    );
  const urls = etcd.split(',').map((u) => u.trim());
  for (const u of urls)
    if (!/^https?:\/\/[^/\s]+$/.test(u))
      throw new KvError(
        'INVALID_ARGUMENT',
        `--etcd takes URLs such as http://127.0.0.1:2379, got ${JSON.stringify(u)}`,
      );
  checkName('--cluster', cluster);
  checkName('--shard', shard);
  if (config.nodeName !== undefined) checkName('--node-name', config.nodeName);
  return {
    cluster,
    etcd: urls,
    shard,
    nodeName: config.nodeName,
    announce: config.announce === undefined ? undefined : parsePrimaryAddress(config.announce),
    leaseTtlMs: config.clusterLeaseMs,
  };
}

/** Refuses every keyed command (and every write) while the node joins its cluster. */
export function joiningGate(shard: string): ClusterGate {
  const joining = () =>
    new KvError('CLUSTERDOWN', 'this node is joining its cluster (waiting for etcd); retry in a moment');
  return {
    shard,
    check: () => joining(),
    acknowledge: () => {
      throw joining();
    },
    slotOwners: () => [],
  };
}

/** Connects to etcd, loads the topology, joins the shard; throws SetupError with one line when it cannot. */
export async function joinCluster(
  server: KvServer,
  s: ClusterSettings,
  config: ServerConfig,
  port: number,
  log: Logger,
): Promise<ClusterNode> {
  const host = s.announce?.host ?? config.host;
  const announcedPort = s.announce?.port ?? port;
  const [{ openEtcd }, { ClusterNode }, { replicationDataPlane }] = await Promise.all([
    import('../cluster/etcd-client.js'),
    import('../cluster/node.js'),
    import('../cluster/data-plane.js'),
  ]);
  const etcd = openEtcd(s.etcd, ETCD_CALL_TIMEOUT_MS);
  const node = new ClusterNode({
    etcd,
    cluster: s.cluster,
    shard: s.shard,
    node: s.nodeName ?? `${host}-${announcedPort}`.replace(/[^A-Za-z0-9_.-]/g, '_'),
    host,
    port: announcedPort,
    leaseTtlMs: s.leaseTtlMs,
    log,
    dataPlane: replicationDataPlane(server.replication, (reason) =>
      log.warn({ reason }, 'cluster: writes refused until this node leads again'),
    ),
  });
  server.replication.clusterManaged = true;
  try {
    await node.start();
  } catch (err) {
    etcd.close();
    const code = (err as KvError).code;
    if (code === 'INVALID_ARGUMENT')
      throw new SetupError(`--cluster ${s.cluster}: ${(err as Error).message}`);
    throw new SetupError(`cannot reach etcd at ${s.etcd.join(',')} (--etcd): ${(err as Error).message}`);
  }
  log.info({ cluster: s.cluster, shard: s.shard, node: node.member.node }, 'cluster: joined');
  const stop = node.stop.bind(node);
  node.stop = async () => {
    await stop();
    etcd.close();
  };
  return node;
}
