/**
 * SDK writers and the model that checks them afterwards, shared by the
 * failover tests (test/cluster/), `npm run torture:cluster` (through
 * connectCluster) and `npm run torture:replication` (through a client on
 * whichever node is the primary now: a `WriteTarget` per writer).
 *
 * Each writer owns its keys and has one SET or DEL in flight at a time. Per key the model keeps the last acknowledged state
 * (a value, or null after a DEL) and the states sent since whose fate is
 * unknown (the request failed: it may or may not have been applied). After
 * the run every key must read as its last acknowledged state or one of the
 * unknown ones: anything else is a lost write, a resurrected delete, or a
 * value no one wrote.
 *
 * Only errors that leave a write's fate open, or that refuse it, are
 * expected; any other error is a failure of the run.
 */
import type { KvClusterClient } from '../../src/client/cluster.js';
import { keySlot } from '../../src/cluster/slots.js';

/** Error codes a write may get while a shard fails over or etcd is away (its fate unknown, or refused). */
export const FAILOVER_CODES: readonly string[] = [
  'FENCED',
  'CONNECTION_CLOSED',
  'CONNECTION_FAILED',
  'NOT_ENOUGH_REPLICAS',
  'NOREPLICAS',
  'TIMEOUT',
  'CLUSTERDOWN',
  'READONLY',
];

/** Per key: the last acknowledged state, and states whose fate is unknown since. */
export interface KeyLog {
  acked: string | null;
  maybe: (string | null)[];
}

/** What one writer writes through. */
export interface WriteTarget {
  set(key: string, value: string): Promise<unknown>;
  del(key: string): Promise<unknown>;
  /** Called after a failed write, before the backoff (e.g. to reopen a closed connection). */
  failed?(): Promise<void>;
  /** Called when the writer stops. */
  close?(): Promise<void>;
}

export interface WriterOptions {
  /** Concurrent writers, one request in flight each. */
  writers: number;
  /** Keys each writer cycles through. */
  keysPerWriter: number;
  /** Key prefix (keeps runs apart). Default 'w'. */
  prefix?: string;
  /** Pause after a failed write, ms. Default 20. */
  backoffMs?: number;
}

export class ClusterWriters {
  readonly logs = new Map<string, KeyLog>();
  acks = 0;
  failed = 0;
  /** Date.now() of the latest acknowledgement. */
  lastAckAt = 0;
  /** Error codes seen, with counts. */
  readonly codes = new Map<string, number>();
  private stopping = false;
  private running: Promise<void>[] = [];
  private seq = 0;

  /**
   * `through`: the cluster client every writer shares, or a function giving
   * each writer (by name) its own target.
   */
  constructor(
    private readonly through: KvClusterClient | ((writer: string) => WriteTarget),
    private readonly o: WriterOptions,
  ) {}

  /** Starts the writers (again, after a stop: the model carries on). */
  start(): void {
    this.stopping = false;
    const prefix = this.o.prefix ?? 'w';
    this.running = Array.from({ length: this.o.writers }, (_, w) =>
      this.writer(`${prefix}${w}`).catch((err: unknown) => {
        this.unexpected ??= err as Error;
      }),
    );
  }

  /** The first error no failover explains (it stopped its writer), if any. */
  unexpected: Error | undefined;

  /** Stops the writers; rejects with the first unexpected error one of them met. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.running);
    if (this.unexpected !== undefined) throw this.unexpected;
  }

  private async writer(name: string): Promise<void> {
    const target = typeof this.through === 'function' ? this.through(name) : this.through;
    try {
      for (let i = 0; !this.stopping; i++) {
        const key = `${name}:${i % this.o.keysPerWriter}`;
        let log = this.logs.get(key);
        if (log === undefined) {
          log = { acked: null, maybe: [] };
          this.logs.set(key, log);
        }
        const value = i % 7 === 3 ? null : `${name}-${++this.seq}`;
        try {
          if (value === null) await target.del(key);
          else await target.set(key, value);
          log.acked = value;
          log.maybe = [];
          this.acks++;
          this.lastAckAt = Date.now();
        } catch (err) {
          log.maybe.push(value);
          this.failed++;
          const code = (err as { code?: string }).code ?? 'NO_CODE';
          this.codes.set(code, (this.codes.get(code) ?? 0) + 1);
          if (!FAILOVER_CODES.includes(code)) throw err;
          await (target as WriteTarget).failed?.();
          await new Promise((r) => setTimeout(r, this.o.backoffMs ?? 20));
        }
      }
    } finally {
      if (target !== this.through) await (target as WriteTarget).close?.();
    }
  }

  /**
   * Checks that `key` may hold `got` (null: absent): a line saying what is
   * wrong, or undefined. With `adopt`, the model then takes `got` as the
   * key's acknowledged state (a later run starts from what the node holds).
   */
  check(key: string, got: string | null, adopt = false): string | undefined {
    const log = this.logs.get(key);
    if (log === undefined) throw new Error(`check: ${key} was never written`);
    const allowed = [log.acked, ...log.maybe];
    const bad = allowed.includes(got)
      ? undefined
      : `${key} (slot ${keySlot(key)}) reads ${JSON.stringify(got)}; acknowledged ${JSON.stringify(log.acked)}` +
        (log.maybe.length ? `, unknown since: ${JSON.stringify(log.maybe)}` : '') +
        (log.acked === null && got !== null ? ' — a deleted key came back' : '');
    if (adopt) {
      log.acked = got;
      log.maybe = [];
    }
    return bad;
  }

  /**
   * Reads every key back (through `kv`, retrying reads that fail for a while)
   * and returns one line per key that holds a state no model allows.
   */
  async verify(kv?: KvClusterClient): Promise<string[]> {
    const reader = kv ?? (typeof this.through === 'function' ? undefined : this.through);
    if (reader === undefined) throw new Error('verify: give a client to read with');
    const bad: string[] = [];
    for (const key of this.logs.keys()) {
      let got: string | null | undefined;
      for (let attempt = 0; got === undefined; attempt++) {
        try {
          got = (await reader.get(key)) ?? null;
        } catch (err) {
          if (attempt >= 20) throw err;
          await new Promise((r) => setTimeout(r, 250));
        }
      }
      const line = this.check(key, got);
      if (line !== undefined) bad.push(line);
    }
    return bad;
  }
}
