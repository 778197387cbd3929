/**
 * Replication (src/replication/) as the data plane of a cluster node
 * (node.ts): what etcd decides, replication carries out. Kept apart so that
 * node.ts depends on an interface and its tests can drive it without a log.
 */
import type { Replication } from '../replication/replication.js';
import type { ClusterDataPlane } from './node.js';

export function replicationDataPlane(repl: Replication, onFence: (reason: string) => void): ClusterDataPlane {
  return {
    position: () => ({ epoch: repl.epochs.epoch, offset: repl.store.nextOffset }),
    // A replica in the middle of a sync, or of a full resync not caught up yet (even one
    // interrupted by a restart), holds an emptied or partial log: it must not lead.
    canLead: () => (repl.link === undefined || repl.link.status !== 'sync') && !repl.resync.pending,
    promote: (epoch) => repl.promote(epoch),
    follow: (host, port) => repl.replicaOf({ host, port }),
    fence: onFence,
    appliedFrom: (host, port) => {
      const link = repl.link;
      return link !== undefined && link.status === 'up' && link.address === `${host}:${port}`
        ? link.applied
        : undefined;
    },
    sync: () => repl.store.sync(),
  };
}
