/**
 * A private etcd (Debian's etcd-server) for tests, benchmarks and examples:
 * free 127.0.0.1 ports, its own data directory, a short election timeout
 * (250 ms) so that etcd accepts 1-second leases. Killed by its owner.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
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

/** Launches on fresh ports tried before giving up when another socket took one of them first. */
const PORT_ATTEMPTS = 5;

/** Thrown by a launch whose etcd could not bind its port (EADDRINUSE). */
class PortTaken extends Error {}

/**
 * Starts etcd with its data under `dir`; resolves once it answers a put.
 * freePort's port is free only when asked: by the time etcd binds it, a
 * connection elsewhere on the machine may have taken it as its own source
 * port (the same ephemeral range; a parallel test suite makes thousands),
 * and etcd exits with "address already in use". The first start then tries
 * fresh ports; a restart keeps its ports (that is what it tests) and waits.
 */
export async function startEtcd(dir: string): Promise<EtcdProcess> {
  let url = '';
  let peer = '';
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
        if (p.exitCode !== null) {
          const message = `etcd exited with ${p.exitCode}: ${err}`;
          throw err.includes('address already in use') ? new PortTaken(message) : new Error(message);
        }
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

  /** Launches, retrying a lost port race: on fresh ports when `rebind`, else on the same after a pause. */
  const launchRetrying = async (rebind: boolean) => {
    for (let attempt = 1; ; attempt++) {
      if (rebind) {
        // etcd binds before it writes its member data; cleared all the same, as that data names the ports.
        if (attempt > 1) rmSync(`${dir}/etcd`, { recursive: true, force: true });
        const clientPort = await freePort();
        let peerPort = await freePort();
        while (peerPort === clientPort) peerPort = await freePort();
        url = `http://127.0.0.1:${clientPort}`;
        peer = `http://127.0.0.1:${peerPort}`;
      }
      try {
        await launch();
        return;
      } catch (e) {
        if (!(e instanceof PortTaken) || attempt === PORT_ATTEMPTS) throw e;
        if (!rebind) await new Promise((r) => setTimeout(r, 200 * attempt));
      }
    }
  };

  await launchRetrying(true);
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
      await launchRetrying(false);
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
