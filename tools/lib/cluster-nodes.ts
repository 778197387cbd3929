/**
 * kv-server nodes as child processes, for the tools that run several on one
 * machine (`npm run torture:cluster`, `npm run bench:cluster`, `npm run
 * torture:replication`): spawn one on a free port and learn the port from its
 * 'listening' log line; in cluster mode, wait until every shard has a primary
 * and its replicas, as CLUSTER SLOTS of any live node says. (The test suite
 * spawns its nodes through test/server/spawn.ts, which cleans up after vitest.)
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { type ClusterSlotRange, KvClient } from '../../src/index.js';
import { ownChild } from './cli.js';

const KV_SERVER = join(import.meta.dirname, '..', '..', 'src', 'server', 'main.js');
/** How long a node may take to listen (a loaded machine, a long recovery). */
export const NODE_START_TIMEOUT_MS = 30_000;
/** Bytes of a node's stderr kept for the report when something goes wrong. */
const STDERR_TAIL_BYTES = 200_000;

/** A kv-server node: its name (for reports) and data directory. */
export interface NodeSpec {
  readonly name: string;
  readonly dir: string;
  /** More kv-server flags (not --log-level: the 'listening' line is read at level info). */
  readonly args?: readonly string[];
}

export interface ClusterNodeSpec extends NodeSpec {
  readonly etcd: string;
  readonly cluster: string;
  readonly shard: string;
  readonly leaseMs: number;
}

export interface NodeProcess<S extends NodeSpec = NodeSpec> {
  readonly spec: S;
  readonly proc: ChildProcess;
  readonly port: number;
  /** The tail of what the node wrote on stderr. */
  stderr(): string;
  /** True until the process exited. */
  alive(): boolean;
  /** Sends SIGKILL and waits for the exit. */
  kill(): Promise<void>;
}

export type ClusterNodeProcess = NodeProcess<ClusterNodeSpec>;

/** Starts a node; resolves once it listens. */
export function spawnClusterNode(spec: ClusterNodeSpec): Promise<ClusterNodeProcess> {
  return spawnNode(spec, [
    ...['--cluster', spec.cluster, '--etcd', spec.etcd, '--shard', spec.shard, '--node-name', spec.name],
    ...['--cluster-lease-ms', String(spec.leaseMs), ...(spec.args ?? [])],
  ]);
}

/** Starts a kv-server on `spec.dir` with `more` flags (a standalone one when they name no cluster). */
export function spawnNode<S extends NodeSpec>(
  spec: S,
  more: readonly string[] = spec.args ?? [],
): Promise<NodeProcess<S>> {
  const args = [
    KV_SERVER,
    ...['--dir', spec.dir, '--host', '127.0.0.1', '--port', '0', '--log-level', 'info'],
    ...more,
  ];
  const proc = ownChild(spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] }));
  let err = '';
  let exited = false;
  const exit = new Promise<void>((res) =>
    proc.on('exit', () => {
      exited = true;
      res();
    }),
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(
        new Error(
          `node ${spec.name} did not listen within ${NODE_START_TIMEOUT_MS} ms:\n${err.slice(-2000)}`,
        ),
      );
    }, NODE_START_TIMEOUT_MS);
    proc.stderr!.setEncoding('utf8');
    let listening = false;
    proc.stderr!.on('data', (d: string) => {
      err += d;
      if (err.length > 2 * STDERR_TAIL_BYTES) err = err.slice(-STDERR_TAIL_BYTES);
      const m = listening ? null : /"port":(\d+)[^\n]*"msg":"listening"/.exec(err);
      if (m) {
        listening = true;
        clearTimeout(timer);
        resolve({
          spec,
          proc,
          port: Number(m[1]),
          stderr: () => err,
          alive: () => !exited,
          kill: async () => {
            if (!exited) proc.kill('SIGKILL');
            await exit;
          },
        });
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      if (!listening)
        reject(new Error(`node ${spec.name} exited with ${code} before listening:\n${err.slice(-2000)}`));
    });
  });
}

/** CLUSTER SLOTS from the first of `ports` that answers within a second, or [] when none does. */
export async function slotRows(ports: readonly number[]): Promise<ClusterSlotRange[]> {
  for (const port of ports) {
    const c = new KvClient({
      host: '127.0.0.1',
      port,
      lazyConnect: true,
      reconnect: false,
      connectTimeoutMs: 1_000,
      requestTimeoutMs: 1_000,
    });
    c.on('error', () => {});
    try {
      return await c.clusterSlots();
    } catch {
      // try the next node
    } finally {
      await c.close().catch(() => {});
    }
  }
  return [];
}

/**
 * Waits until each of `shards` has a primary among `ports` and `replicas`
 * replicas (CLUSTER SLOTS of a live node); resolves with the rows.
 */
export async function waitHealthy(
  ports: () => readonly number[],
  shards: number,
  replicas: number,
  timeoutMs: number,
): Promise<ClusterSlotRange[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const live = ports();
    const rows = await slotRows(live);
    const byShard = new Map(rows.map((r) => [r.shard, r]));
    if (
      byShard.size === shards &&
      rows.every((r) => r.primary !== null && live.includes(r.primary.port) && r.replicas.length === replicas)
    )
      return rows;
    if (Date.now() > deadline)
      throw new Error(`the cluster was not healthy within ${timeoutMs} ms: ${JSON.stringify(rows)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
