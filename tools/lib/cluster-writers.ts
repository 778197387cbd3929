/**
 * SDK writers against a cluster and the model that checks them afterwards,
 * shared by the failover tests (test/cluster/) and `npm run torture:cluster`.
 *
 * Each writer owns its keys and has one SET or DEL in flight at a time
 * through connectCluster. Per key the model keeps the last acknowledged state
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

  constructor(
    private readonly kv: KvClusterClient,
    private readonly o: WriterOptions,
  ) {}

  start(): void {
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
    for (let i = 0; !this.stopping; i++) {
      const key = `${name}:${i % this.o.keysPerWriter}`;
      let log = this.logs.get(key);
      if (log === undefined) {
        log = { acked: null, maybe: [] };
        this.logs.set(key, log);
      }
      const value = i % 7 === 3 ? null : `${name}-${++this.seq}`;
      try {
        if (value === null) await this.kv.del(key);
        else await this.kv.set(key, value);
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
        await new Promise((r) => setTimeout(r, this.o.backoffMs ?? 20));
      }
    }
  }

  /**
   * Reads every key back (through `kv`, retrying reads that fail for a while)
   * and returns one line per key that holds a state no model allows.
   */
  async verify(kv: KvClusterClient = this.kv): Promise<string[]> {
    const bad: string[] = [];
    for (const [key, log] of this.logs) {
      let got: string | null | undefined;
      for (let attempt = 0; got === undefined; attempt++) {
        try {
          got = (await kv.get(key)) ?? null;
        } catch (err) {
          if (attempt >= 20) throw err;
          await new Promise((r) => setTimeout(r, 250));
        }
      }
      const allowed = [log.acked, ...log.maybe];
      if (!allowed.includes(got))
        bad.push(
          `${key} (slot ${keySlot(key)}) reads ${JSON.stringify(got)}; acknowledged ${JSON.stringify(log.acked)}` +
            (log.maybe.length ? `, unknown since: ${JSON.stringify(log.maybe)}` : '') +
            (log.acked === null && got !== null ? ' — a deleted key came back' : ''),
        );
    }
    return bad;
  }
}
