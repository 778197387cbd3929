/**
 * Cluster mode's limits that the server's settings table needs too: kept
 * apart from shard-member.ts so that reading them does not load the etcd
 * client (etcd3, gRPC, protobufjs: ~25 MiB of RSS a standalone server never
 * uses; src/server/cluster-mode.ts loads it only with --cluster).
 */

/** Default lease TTL: how long a silent primary keeps its shard (and how soon a failover can start). */
export const DEFAULT_LEASE_TTL_MS = 5_000;
/** Shortest lease TTL accepted; etcd itself rounds up to its own minimum (1.5 × its election timeout). */
export const MIN_LEASE_TTL_MS = 1_000;
/** Longest a stopping node waits for etcd to confirm a watch's cancel before dropping it, ms. */
export const ETCD_WATCH_CANCEL_MS = 1_000;
