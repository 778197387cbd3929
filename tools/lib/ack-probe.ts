/**
 * Split-brain watch for a cluster under test: every node of every shard is
 * probed directly (not through the routing client), over and over, with
 *
 *   INFO replication → SET <shard's probe key> → INFO replication → GET
 *
 * and every reply is recorded with the wall-clock time the SET was sent and
 * its reply came back. A SET acknowledged while both INFOs say "primary in
 * epoch E" is attributed to epoch E. From the records:
 *
 * - `splitBrain()`: an acknowledgement in an older epoch for a write sent
 *   after a newer epoch's acknowledgement had arrived (two nodes of one shard
 *   acknowledging at the same time), or one epoch acknowledged by two nodes;
 * - `acksSentBetween()`: what a node acknowledged in a time window, e.g.
 *   after its lease could have expired (fencing).
 *
 * Time stamps are Date.now() of this process; the nodes run on the same
 * machine, so "sent after t" means the node saw the request after t.
 */
import { KvClient } from '../../src/index.js';

/** Pause between two probe rounds of one node, ms. */
export const PROBE_INTERVAL_MS = 50;
/** Timeout of each probe request, ms: a paused or dead node must not hold the round up for long. */
export const PROBE_TIMEOUT_MS = 1_000;

export interface ProbeTarget {
  readonly node: string;
  readonly shard: string;
  /** The node's port now, or undefined while it is down (a restart may change it). */
  port(): number | undefined;
}

export interface WriteProbe {
  readonly node: string;
  readonly shard: string;
  /** Date.now() when the SET was sent and when its reply (or failure) came. */
  readonly sent: number;
  readonly recv: number;
  readonly ok: boolean;
  /** The error code when not acknowledged. */
  readonly code?: string;
  /** The epoch the node was primary in before and after the SET, when both INFOs agree. */
  readonly epoch?: number;
}

export interface ReadProbe {
  readonly node: string;
  readonly shard: string;
  readonly sent: number;
  readonly ok: boolean;
  readonly code?: string;
}

interface RoleAt {
  role: string;
  epoch: number;
}

export class AckProbe {
  readonly writes: WriteProbe[] = [];
  readonly reads: ReadProbe[] = [];
  private stopping = false;
  private loops: Promise<void>[] = [];
  private seq = 0;

  /**
   * @param targets every node to probe (read again each round, so a restarted node's new port is used)
   * @param keyOf the probe key of a shard: any key whose slot the shard owns
   */
  constructor(
    private readonly targets: () => readonly ProbeTarget[],
    private readonly keyOf: (shard: string) => string,
  ) {}

  start(): void {
    this.loops = this.targets().map((t) => this.loop(t.node));
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.loops);
  }

  private async loop(node: string): Promise<void> {
    let client: KvClient | undefined;
    let clientPort: number | undefined;
    try {
      while (!this.stopping) {
        const t = this.targets().find((x) => x.node === node);
        const port = t?.port();
        if (t === undefined || port === undefined) {
          await sleep(PROBE_INTERVAL_MS);
          continue;
        }
        if (client === undefined || clientPort !== port || client.status === 'closed') {
          await client?.close().catch(() => {});
          client = new KvClient({
            host: '127.0.0.1',
            port,
            requestTimeoutMs: PROBE_TIMEOUT_MS,
            connectTimeoutMs: PROBE_TIMEOUT_MS,
            lazyConnect: true,
            reconnect: false,
          });
          client.on('error', () => {});
          clientPort = port;
        }
        await this.round(client, t);
        await sleep(PROBE_INTERVAL_MS);
      }
    } finally {
      await client?.close().catch(() => {});
    }
  }

  private async round(c: KvClient, t: ProbeTarget): Promise<void> {
    const key = this.keyOf(t.shard);
    const before = await roleOf(c);
    const sent = Date.now();
    let ok = false;
    let code: string | undefined;
    try {
      await c.set(key, `${t.node}:${++this.seq}`);
      ok = true;
    } catch (err) {
      code = (err as { code?: string }).code ?? 'NO_CODE';
    }
    const recv = Date.now();
    const after = ok ? await roleOf(c) : undefined;
    const epoch =
      before?.role === 'primary' && after?.role === 'primary' && before.epoch === after.epoch
        ? before.epoch
        : undefined;
    this.writes.push({
      node: t.node,
      shard: t.shard,
      sent,
      recv,
      ok,
      ...(code !== undefined && { code }),
      ...(epoch !== undefined && { epoch }),
    });
    const readAt = Date.now();
    try {
      await c.get(key);
      this.reads.push({ node: t.node, shard: t.shard, sent: readAt, ok: true });
    } catch (err) {
      const rc = (err as { code?: string }).code ?? 'NO_CODE';
      this.reads.push({ node: t.node, shard: t.shard, sent: readAt, ok: false, code: rc });
    }
  }

  /** Acknowledged probe writes sent in [from, to] (Date.now() times), optionally of one node. */
  acksSentBetween(from: number, to: number, node?: string): WriteProbe[] {
    return this.writes.filter(
      (w) => w.ok && w.sent >= from && w.sent <= to && (node === undefined || w.node === node),
    );
  }

  /** One line per split-brain finding (none is the only good answer). */
  splitBrain(): string[] {
    return splitBrain(this.writes);
  }
}

/**
 * Two nodes of one shard acknowledging writes at the same time, read from
 * epoch-attributed acknowledgements: an epoch acknowledged by two nodes, or
 * an acknowledgement in epoch E for a write sent after an acknowledgement in
 * a newer epoch of the same shard had already come back.
 */
export function splitBrain(writes: readonly WriteProbe[]): string[] {
  const bad: string[] = [];
  const byShard = new Map<string, WriteProbe[]>();
  for (const w of writes)
    if (w.ok && w.epoch !== undefined) byShard.set(w.shard, [...(byShard.get(w.shard) ?? []), w]);
  for (const [shard, acks] of byShard) {
    const nodeOfEpoch = new Map<number, string>();
    for (const a of acks) {
      const n = nodeOfEpoch.get(a.epoch!);
      if (n !== undefined && n !== a.node)
        bad.push(`shard ${shard}: epoch ${a.epoch} acknowledged by ${n} and by ${a.node}`);
      nodeOfEpoch.set(a.epoch!, a.node);
    }
    // Earliest arrival of an acknowledgement in each epoch; an older epoch must not ack a write sent after it.
    const firstRecv = new Map<number, number>();
    for (const a of acks) firstRecv.set(a.epoch!, Math.min(firstRecv.get(a.epoch!) ?? Infinity, a.recv));
    for (const a of acks)
      for (const [epoch, recv] of firstRecv)
        if (epoch > a.epoch! && a.sent > recv) {
          bad.push(
            `shard ${shard}: ${a.node} acknowledged a write in epoch ${a.epoch} sent ${a.sent - recv} ms after ` +
              `${nodeOfEpoch.get(epoch)} had acknowledged one in the newer epoch ${epoch}`,
          );
          break;
        }
  }
  return bad;
}

async function roleOf(c: KvClient): Promise<RoleAt | undefined> {
  try {
    const info = await c.info('replication');
    const r = (info.replication ?? info) as { role?: unknown; epoch?: unknown };
    return typeof r.role === 'string' && typeof r.epoch === 'number'
      ? { role: r.role, epoch: r.epoch }
      : undefined;
  } catch {
    return undefined;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
