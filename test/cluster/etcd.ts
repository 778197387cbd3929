/**
 * Test helper: a private etcd (tools/lib/etcd.ts) in a temporary directory
 * removed after the test file. Without `etcd` on PATH the cluster tests skip
 * with one line naming the package; under CI (CI=true) a missing etcd is a
 * failure, not a skip.
 */
import { type EtcdProcess, etcdOnPath, freePort, startEtcd as startEtcdIn } from '../../tools/lib/etcd.js';
import { tempDir } from '../server/spawn.js';

export type { EtcdProcess };
export { freePort };

/** True when etcd can run here; prints the skip line (or throws under CI) when not. */
export const etcdAvailable: boolean = (() => {
  if (etcdOnPath()) return true;
  const line = 'skipping the cluster tests: etcd not found on PATH (install Debian package etcd-server)';
  if (process.env.CI) throw new Error(`${line}; CI must not skip them`);
  console.warn(line);
  return false;
})();

export function startEtcd(): Promise<EtcdProcess> {
  return startEtcdIn(tempDir());
}
