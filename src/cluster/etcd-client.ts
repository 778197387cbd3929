/**
 * The etcd client of a cluster node (and of kv-cluster): etcd3 with every
 * call bounded by a deadline and with fault handling tuned for a control
 * plane that must notice etcd's return quickly.
 *
 * etcd3's defaults open a host's circuit breaker for 5 s after three failed
 * calls and back broken watches off for up to 30 s. After an outage of etcd
 * that kept a node from renewing for 5 s more than the outage itself, and
 * its watches silent for half a minute. Here a host is retried 1 s after its
 * breaker opened (with several etcd URLs the breaker still skips a dead
 * member between tries), and watches reconnect within a second. The shard
 * loop (shard-member.ts) and the topology view (topology.ts) poll on their
 * own schedule anyway; the watches only make them react sooner.
 */
import { ConsecutiveBreaker, circuitBreaker, ExponentialBackoff, handleWhen, retry } from 'cockatiel';
import { Etcd3, isRecoverableError } from 'etcd3';

/** Consecutive failed calls to one etcd URL before it is skipped for ETCD_HOST_RETRY_MS. */
export const ETCD_HOST_FAILURES = 3;
/** How long an etcd URL whose calls failed is skipped before it is tried again, ms. */
export const ETCD_HOST_RETRY_MS = 1_000;
/** Longest wait before a broken watch is re-created, ms. */
export const ETCD_WATCH_MAX_BACKOFF_MS = 1_000;

/** An etcd client on `hosts` whose calls fail after `callTimeoutMs`. */
export function openEtcd(hosts: readonly string[], callTimeoutMs: number): Etcd3 {
  return new Etcd3({
    hosts: [...hosts],
    dialTimeout: callTimeoutMs,
    defaultCallOptions: () => ({ deadline: Date.now() + callTimeoutMs }),
    faultHandling: {
      host: () =>
        circuitBreaker(handleWhen(isRecoverableError), {
          halfOpenAfter: ETCD_HOST_RETRY_MS,
          breaker: new ConsecutiveBreaker(ETCD_HOST_FAILURES),
        }),
      global: retry(handleWhen(isRecoverableError), { maxAttempts: hosts.length }),
      // etcd3 wants a backoff (it calls next() for each wait), not the factory.
      watchBackoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: ETCD_WATCH_MAX_BACKOFF_MS }).next(),
    },
  });
}

/**
 * Cancels a watch, waiting at most `ms` for etcd to confirm it. etcd3's
 * cancel waits for the watch stream's answer, which never comes while the
 * stream is stuck reconnecting; a node that stops must not hang on that.
 * The watcher is dropped either way (the client is closed after).
 */
export async function cancelWatch(
  watcher: { cancel(): Promise<void> } | undefined,
  ms: number,
): Promise<void> {
  if (watcher === undefined) return;
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  try {
    await Promise.race([watcher.cancel().catch(() => {}), expired]);
  } finally {
    clearTimeout(timer);
  }
}
