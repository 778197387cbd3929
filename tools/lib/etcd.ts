/**
 * A private etcd (Debian's etcd-server) for tests, benchmarks and examples:
 * free 127.0.0.1 ports, its own data directory, a short election timeout
 * (250 ms) so that etcd accepts 1-second leases. Killed by its owner.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import type { Etcd3 } from 'etcd3';
import { openEtcd } from '../../src/cluster/etcd-client.js';
import { ownChild } from './cli.js';

/** Deadline of the helper's own etcd calls, ms. */
const CALL_TIMEOUT_MS = 2_000;

/** Whether an `etcd` binary is on PATH. */
export function etcdOnPath(): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v etcd'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface EtcdProcess {
  readonly url: string;
  readonly dir: string;
  client(): Etcd3;
  /** SIGKILL, then start again on the same ports and data. */
  restart(): Promise<void>;
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Sends a signal without waiting for an exit (SIGSTOP, SIGCONT). */
  signal(signal: NodeJS.Signals): void;
  stop(): Promise<void>;
}

/** Starts etcd with its data under `dir`; resolves once it answers a put. */
export async function startEtcd(dir: string): Promise<EtcdProcess> {
  const clientPort = await freePort();
  const peerPort = await freePort();
  const url = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const clients: Etcd3[] = [];
  let proc: ChildProcess | undefined;

  const launch = async () => {
    const p = ownChild(
      spawn(
        'etcd',
        [
          ...['--name', 'test', '--data-dir', `${dir}/etcd`],
          ...['--listen-client-urls', url, '--advertise-client-urls', url],
          ...['--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer],
          ...['--initial-cluster', `test=${peer}`],
          ...['--heartbeat-interval', '50', '--election-timeout', '250', '--log-level', 'error'],
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      ),
    );
    let err = '';
    p.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
    });
    proc = p;
    const probe = openEtcd([url], CALL_TIMEOUT_MS);
    const deadline = Date.now() + 15_000;
    try {
      for (;;) {
        if (p.exitCode !== null) throw new Error(`etcd exited with ${p.exitCode}: ${err}`);
        try {
          await probe.put('/segkv-test/ready').value('1');
          return;
        } catch {
          if (Date.now() > deadline) throw new Error(`etcd did not start within 15 s: ${err}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    } finally {
      probe.close();
    }
  };

  const kill = async (signal: NodeJS.Signals = 'SIGKILL') => {
    const p = proc;
    if (p === undefined || p.exitCode !== null || p.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill(signal);
    });
  };

  await launch();
  return {
    url,
    dir,
    client() {
      const c = openEtcd([url], CALL_TIMEOUT_MS);
      clients.push(c);
      return c;
    },
    async restart() {
      await kill('SIGKILL');
      await launch();
    },
    kill,
    signal(signal) {
      proc?.kill(signal);
    },
    async stop() {
      for (const c of clients) c.close();
      await kill('SIGKILL');
    },
  };
}
