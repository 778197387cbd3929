/**
 * The cluster SDK: `connectCluster({ nodes })` returns a client with the
 * methods of `connect()`'s, routed by hash slot to the primary that owns
 * each key (Redis Cluster's client model, as ioredis's Cluster).
 *
 * - The slot map comes from `CLUSTER SLOTS` of any reachable node (the seed
 *   list first, then every node seen); it is reloaded on `MOVED`, `READONLY`
 *   and `CLUSTERDOWN` replies and when a node cannot be reached.
 * - One KvClient per node, each pipelining on its own connection; commands of
 *   one tick to one node leave in one write.
 * - A command is resent only when it surely was not run: `MOVED`,
 *   `READONLY`, `CLUSTERDOWN` (also a planned switchover's pause) and
 *   `NOREPLICAS` are answers given before running it, and a connection that never opened carried nothing. A read is also resent
 *   after its connection dropped. A write whose outcome is unknown — its
 *   connection dropped after it was sent (`CONNECTION_CLOSED`), or the node
 *   lost its lease before acknowledging it (`FENCED`) — rejects with that
 *   error; the caller decides whether to retry it.
 * - Multi-key commands go to the slot of their first key; keys in several
 *   slots get the server's `CROSSSLOT` (use a hash tag: `{user1}:a`).
 * - With `readFromReplicas`, reads go to a replica of the slot's shard
 *   (round robin), which may lag the primary.
 */

import { keySlot } from '../cluster/slots.js';
import type { SetOptions } from '../engine/arguments.js';
import {
  checkKey,
  checkOptions,
  invalid,
  limitArity,
  msetKeysAndValues,
  rejecting,
} from '../engine/arguments.js';
import type { Key } from '../engine/keys.js';
import { KvError } from '../errors.js';
import { type ClusterSlotRange, KvClient } from './client.js';
import type { ClientOptions } from './options.js';

/** Redirections and retries one command may take before it fails with the last error. */
export const MAX_CLUSTER_ATTEMPTS = 16;
/** Wait before retrying after CLUSTERDOWN or an unreachable node, ms (doubled per retry, capped). */
const RETRY_MIN_MS = 50;
const RETRY_MAX_MS = 1000;

export interface ClusterClientOptions
  extends Omit<ClientOptions, 'host' | 'port' | 'lazyConnect' | 'reconnect'> {
  /** Some nodes of the cluster (any of them; one reachable is enough). */
  nodes: readonly { host: string; port: number }[];
  /** Send reads to replicas (they may lag the primary). Default false. */
  readFromReplicas?: boolean;
}

const CLUSTER_OPTION_NAMES = [
  'nodes',
  'readFromReplicas',
  'password',
  'tls',
  'valueEncoding',
  'requestTimeoutMs',
  'connectTimeoutMs',
  'helloTimeoutMs',
  'retryMinDelayMs',
  'retryMaxDelayMs',
  'maxRetries',
  'offlineQueueLimit',
  'maxReplyBytes',
] as const;

interface SlotOwners {
  primary: string | undefined;
  replicas: string[];
}

function addressOf(n: { host: string; port: number }): string {
  return `${n.host}:${n.port}`;
}

export class KvClusterClient<V = string> {
  private readonly nodeOptions: ClientOptions;
  private readonly seeds: string[];
  private readonly readFromReplicas: boolean;
  private readonly clients = new Map<string, KvClient<V>>();
  private readonly slots: (SlotOwners | undefined)[] = new Array(16_384);
  private refreshing: Promise<void> | undefined;
  private closed = false;
  private turn = 0;

  constructor(options: ClusterClientOptions) {
    checkOptions('connectCluster', options, CLUSTER_OPTION_NAMES);
    if (!Array.isArray(options.nodes) || options.nodes.length === 0)
      throw invalid('connectCluster: nodes must be a non-empty array of { host, port }');
    this.seeds = options.nodes.map((n) => {
      if (typeof n?.host !== 'string' || !Number.isInteger(n.port))
        throw invalid(`connectCluster: each node is { host: string, port: int }, got ${JSON.stringify(n)}`);
      return addressOf(n);
    });
    const { nodes: _n, readFromReplicas, ...rest } = options;
    this.readFromReplicas = readFromReplicas === true;
    this.nodeOptions = { ...rest, lazyConnect: true, reconnect: false };
  }

  /** Loads the slot map from the first node that answers. */
  async refresh(): Promise<void> {
    this.refreshing ??= this.loadSlots().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private async loadSlots(): Promise<void> {
    const candidates = [...new Set([...this.seeds, ...this.clients.keys()])];
    let last: unknown;
    for (const address of candidates) {
      try {
        const rows = await this.client(address).clusterSlots();
        this.apply(rows);
        return;
      } catch (err) {
        last = err;
      }
    }
    throw new KvError(
      'CONNECTION_FAILED',
      `no node of the cluster answered CLUSTER SLOTS (tried ${candidates.join(', ')})`,
      {
        cause: last,
      },
    );
  }

  private apply(rows: readonly ClusterSlotRange[]): void {
    this.slots.fill(undefined);
    for (const r of rows) {
      const owners: SlotOwners = {
        primary: r.primary ? addressOf(r.primary) : undefined,
        replicas: r.replicas.map(addressOf),
      };
      for (let s = r.start; s <= r.end; s++) this.slots[s] = owners;
    }
  }

  private client(address: string): KvClient<V> {
    let c = this.clients.get(address);
    if (c === undefined || c.status === 'closed' || c.status === 'closing') {
      const [host, port] = [
        address.slice(0, address.lastIndexOf(':')),
        Number(address.slice(address.lastIndexOf(':') + 1)),
      ];
      c = new KvClient<V>({ ...this.nodeOptions, host, port });
      c.on('error', () => {});
      this.clients.set(address, c);
    }
    return c;
  }

  /** Runs `op` on the node owning `key`'s slot, following MOVED and riding through failovers. */
  private async route<T>(
    name: string,
    key: unknown,
    write: boolean,
    op: (c: KvClient<V>) => Promise<T>,
  ): Promise<T> {
    if (this.closed) throw new KvError('CLOSED', 'the cluster client is closed');
    const slot = keySlot(checkKey(name, key));
    let delay = RETRY_MIN_MS;
    let last: unknown;
    // A replica in a full resync answers LOADING: the read goes to the primary instead.
    let primaryOnly = false;
    for (let attempt = 0; attempt < MAX_CLUSTER_ATTEMPTS; attempt++) {
      let owners = this.slots[slot];
      if (owners?.primary === undefined) {
        await this.refresh().catch((err: unknown) => {
          last = err;
        });
        owners = this.slots[slot];
      }
      const address =
        !write && !primaryOnly && this.readFromReplicas && owners !== undefined && owners.replicas.length > 0
          ? owners.replicas[this.turn++ % owners.replicas.length]!
          : owners?.primary;
      if (address === undefined) {
        await sleep(delay);
        delay = Math.min(RETRY_MAX_MS, delay * 2);
        continue;
      }
      try {
        return await op(this.client(address));
      } catch (err) {
        last = err;
        const code = (err as KvError).code;
        if (code === 'MOVED') {
          const to = (err as Error).message.split(' ')[1];
          if (to !== undefined) this.slots[slot] = { primary: to, replicas: [] };
          void this.refresh().catch(() => {});
          continue;
        }
        if (code === 'LOADING' && !write) {
          primaryOnly = true;
          continue;
        }
        const notRun =
          code === 'READONLY' ||
          code === 'CLUSTERDOWN' ||
          code === 'CONNECTION_FAILED' ||
          code === 'NOREPLICAS';
        const readLost = !write && (code === 'CONNECTION_CLOSED' || code === 'CLOSED' || code === 'TIMEOUT');
        if (code === 'CLOSED' && write && !this.closed)
          // Another command's error closed this node's connection under this write: its fate is unknown.
          throw new KvError(
            'CONNECTION_CLOSED',
            `the connection to ${address} closed after the write was queued; it may or may not have been applied`,
            { cause: err },
          );
        if (!notRun && !readLost) throw err;
        // A node that answered (READONLY, CLUSTERDOWN, NOREPLICAS) keeps its connection: other
        // commands in flight on it are fine. One that failed is dropped and reconnected.
        if (code !== 'READONLY' && code !== 'CLUSTERDOWN' && code !== 'NOREPLICAS') {
          this.clients
            .get(address)
            ?.close()
            .catch(() => {});
          this.clients.delete(address);
        }
        await sleep(delay);
        delay = Math.min(RETRY_MAX_MS, delay * 2);
        await this.refresh().catch(() => {});
      }
    }
    throw last instanceof Error ? last : new KvError('CLUSTERDOWN', `slot ${slot} has no reachable primary`);
  }

  get(key: Key): Promise<V | undefined> {
    return this.route('get', key, false, (c) => c.get(key));
  }
  /** As KvClient's `set`: SetOptions, or Redis's tokens (`set(k, v, 'EX', 10, 'NX')`). */
  set(key: Key, value: V, options?: SetOptions): Promise<boolean>;
  set(key: Key, value: V, ...redisTokens: (string | number)[]): Promise<boolean>;
  set(key: Key, value: V, ...rest: unknown[]): Promise<boolean> {
    return this.route('set', key, true, (c) => c.set(key, value, ...(rest as (string | number)[])));
  }
  del(...keys: (Key | readonly Key[])[]): Promise<number> {
    return rejecting(() => {
      const flat = flatten('del', keys);
      return this.route('del', flat[0]!, true, (c) => c.del(flat));
    });
  }
  mget(...keys: (Key | readonly Key[])[]): Promise<(V | undefined)[]> {
    return rejecting(() => {
      const flat = flatten('mget', keys);
      return this.route('mget', flat[0]!, false, (c) => c.mget(flat));
    });
  }
  /** As KvClient's `mset`: an object, a Map, [key, value] pairs, or keys and values in turn (ioredis). */
  mset(entries: Readonly<Record<string, V>> | Iterable<readonly [Key, V]>): Promise<void>;
  mset(...keysAndValues: (Key | V)[]): Promise<void>;
  mset(...input: unknown[]): Promise<void> {
    return rejecting(() => {
      // The first key picks the node; KvClient checks the keys and values.
      const args = msetKeysAndValues(input);
      return this.route('mset', args[0], true, (c) => c.mset(...(args as (Key | V)[])));
    });
  }
  exists(...keys: (Key | readonly Key[])[]): Promise<number> {
    return rejecting(() => {
      const flat = flatten('exists', keys);
      return this.route('exists', flat[0]!, false, (c) => c.exists(flat));
    });
  }
  incr(key: Key, delta = 1): Promise<number> {
    return this.route('incr', key, true, (c) => c.incr(key, delta));
  }
  ttl(key: Key): Promise<number> {
    return this.route('ttl', key, false, (c) => c.ttl(key));
  }
  pttl(key: Key): Promise<number> {
    return this.route('pttl', key, false, (c) => c.pttl(key));
  }
  expire(key: Key, seconds: number): Promise<boolean> {
    return this.route('expire', key, true, (c) => c.expire(key, seconds));
  }
  pexpire(key: Key, ms: number): Promise<boolean> {
    return this.route('pexpire', key, true, (c) => c.pexpire(key, ms));
  }
  persist(key: Key): Promise<boolean> {
    return this.route('persist', key, true, (c) => c.persist(key));
  }

  /** PING every primary; resolves with how many answered. */
  async ping(): Promise<number> {
    await this.refresh();
    const primaries = new Set(this.slots.map((o) => o?.primary).filter((a): a is string => a !== undefined));
    const answers = await Promise.allSettled([...primaries].map((a) => this.client(a).ping()));
    return answers.filter((a) => a.status === 'fulfilled').length;
  }

  /** The slot map as last loaded: every range with its primary and replicas. */
  async clusterSlots(): Promise<ClusterSlotRange[]> {
    await this.refresh();
    return this.client([...this.clients.keys()][0] ?? this.seeds[0]!).clusterSlots();
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.clients.values()].map((c) => c.close()));
    this.clients.clear();
  }
}

// The methods with a fixed number of parameters; the variadic ones check their rest through KvClient.
limitArity(KvClusterClient.prototype, {
  refresh: [],
  get: ['key'],
  incr: ['key', 'delta'],
  ttl: ['key'],
  pttl: ['key'],
  expire: ['key', 'seconds'],
  pexpire: ['key', 'ms'],
  persist: ['key'],
  ping: [],
  clusterSlots: [],
  close: [],
});

function flatten(name: string, keys: readonly (Key | readonly Key[])[]): Key[] {
  const flat: Key[] = [];
  for (const k of keys) {
    if (Array.isArray(k)) flat.push(...(k as readonly Key[]));
    else flat.push(k as Key);
  }
  if (flat.length === 0) throw invalid(`${name}: no keys`);
  return flat;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Connects to a cluster: resolves once the slot map is loaded from one of `nodes`. */
export async function connectCluster(
  options: ClusterClientOptions & { valueEncoding: 'buffer' },
): Promise<KvClusterClient<Buffer>>;
export async function connectCluster(options: ClusterClientOptions): Promise<KvClusterClient<string>>;
export async function connectCluster(options: ClusterClientOptions): Promise<KvClusterClient<unknown>> {
  const client = new KvClusterClient<unknown>(options);
  try {
    await client.refresh();
  } catch (err) {
    await client.close();
    throw err;
  }
  return client;
}
