/**
 * A node's part in a planned switchover of its shard (`kv-cluster failover`,
 * Redis's CLUSTER FAILOVER, Patroni's switchover). The request and its
 * phases are in switchover-request.ts; this module moves them on:
 *
 * - **The primary** named `from`, leading the request's epoch, pauses: new
 *   writes get CLUSTERDOWN (not run; clients retry) while writes already in
 *   its log are acknowledged as usual. It writes `paused` with its log's end.
 *   When the target reports `caught-up` to that end (and the end has not
 *   moved), it syncs, lets the acknowledgements due go out, and releases
 *   (shard-member.ts `release`: leader key deleted and `released` written in
 *   one transaction, nothing acknowledged once it is sent). If the target
 *   has not caught up within the request's timeout, or the request vanishes
 *   (kv-cluster gone: its lease expired), it writes `aborted` and takes
 *   writes again.
 * - **The target** named `to`, replicating from that primary, waits until it
 *   has applied every record below the paused end, syncs its log, and writes
 *   `caught-up`. Then only it campaigns for the free leader key (others
 *   defer), so it leads the next epoch with every write the old primary
 *   acknowledged; the old primary follows it as a replica.
 *
 * Why no acknowledged write is lost: an acknowledged write is in the
 * primary's log below its end; the end cannot grow while paused (new writes
 * are refused, and a grown end sends the request back to `paused`); the
 * target holds everything below the end before the primary releases; and the
 * primary acknowledges nothing after the release transaction is sent.
 *
 * Runs on the event loop; steps of one node are serialized.
 */
import type { Etcd3, Watcher } from 'etcd3';
import type { Logger } from 'pino';
import { cancelWatch } from './etcd-client.js';
import { switchoverKey } from './etcd-keys.js';
import { ETCD_WATCH_CANCEL_MS } from './limits.js';
import type { MemberPosition, ShardMember } from './shard-member.js';
import {
  nextPhase,
  parseSwitchover,
  type StoredSwitchover,
  type SwitchoverPhase,
  type SwitchoverRequest,
} from './switchover-request.js';

/** How often a node re-reads the switchover key besides its watch (a watch may break), ms. */
export const SWITCHOVER_POLL_MS = 1_000;
/** How often the target looks at its applied offset while catching up, ms. */
export const CATCH_UP_POLL_MS = 5;

/** What a switchover needs from the node's data plane. */
export interface SwitchoverPlane {
  /** The log's next offset (the end) and its epoch. */
  position(): MemberPosition;
  /** Everything below this offset is applied from the primary at host:port; undefined unless following it now. */
  appliedFrom(host: string, port: number): number | undefined;
  /** fsyncs the log. */
  sync(): Promise<void>;
}

export class SwitchoverParticipant {
  private readonly key: string;
  private watcher: Watcher | undefined;
  private poll: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  private stopped = false;
  /** Set while this primary refuses writes for a switchover. */
  private pause: { request: SwitchoverRequest; timer: NodeJS.Timeout } | undefined;
  /** The mod revision last read, and the one the target is catching up for. */
  private seenMod = 0;
  private catchingUp = 0;

  constructor(
    private readonly etcd: Etcd3,
    private readonly member: ShardMember,
    private readonly plane: SwitchoverPlane,
    private readonly log?: Logger,
  ) {
    this.key = switchoverKey(member.cluster, member.shard);
  }

  /** Why new writes are refused now, or undefined. */
  get pausedFor(): string | undefined {
    const r = this.pause?.request;
    return r && `shard ${this.member.shard} is switching over to node ${r.to} (kv-cluster failover)`;
  }

  async start(): Promise<void> {
    try {
      this.watcher = await this.etcd.watch().key(this.key).create();
      this.watcher.on('put', () => this.poke());
      this.watcher.on('delete', () => this.poke());
      this.watcher.on('error', () => {});
    } catch (err) {
      this.log?.warn({ err: (err as Error).message }, 'cluster: cannot watch the switchover key; polling it');
    }
    this.poll = setInterval(() => this.poke(), SWITCHOVER_POLL_MS).unref();
    this.poke();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.poll);
    this.resume(undefined);
    await cancelWatch(this.watcher, ETCD_WATCH_CANCEL_MS);
  }

  /**
   * This node took the lead in a new epoch: a pause of an earlier leadership
   * is over. (A fence does not end a pause: a primary that renews its lease
   * and resumes in the same epoch goes on with the switchover.)
   */
  onPromoted(): void {
    this.resume(undefined);
  }

  private poke(): void {
    if (this.stopped) return;
    this.chain = this.chain
      .then(() => this.look())
      .catch((err: unknown) => {
        this.log?.warn({ err: (err as Error).message }, 'cluster: switchover step failed');
      });
  }

  private async read(): Promise<StoredSwitchover | undefined> {
    const kv = (await this.etcd.get(this.key).exec()).kvs[0];
    if (kv === undefined) return undefined;
    const request = parseSwitchover(kv.value.toString());
    return request && { request, modRevision: Number(kv.mod_revision) };
  }

  private async look(): Promise<void> {
    const stored = await this.read();
    if (stored === undefined) {
      this.seenMod = 0;
      this.resume('the request was withdrawn (kv-cluster gave up or went away)');
      return;
    }
    const { request: r, modRevision } = stored;
    this.seenMod = modRevision;
    if (r.from === this.member.node) await this.asPrimary(r, modRevision);
    else if (r.to === this.member.node && r.phase === 'paused' && this.catchingUp !== modRevision) {
      this.catchingUp = modRevision;
      void this.catchUp(r, modRevision).catch((err: unknown) => {
        this.log?.warn({ err: (err as Error).message }, 'cluster: switchover catch-up failed');
      });
    }
  }

  /** Writes the request's next phase if the key is still at `mod`; true when written. */
  private async advance(
    r: SwitchoverRequest,
    mod: number,
    phase: SwitchoverPhase,
    extra: { offset?: number; reason?: string } = {},
  ): Promise<boolean> {
    const res = await this.etcd
      .if(this.key, 'Mod', '==', mod)
      .then(
        this.etcd
          .put(this.key)
          .value(nextPhase(r, phase, extra))
          .ignoreLease(),
      )
      .commit();
    return res.succeeded;
  }

  private async asPrimary(r: SwitchoverRequest, mod: number): Promise<void> {
    const leads = this.member.role === 'primary' && this.member.epoch === r.epoch;
    if (r.phase === 'released' || r.phase === 'aborted') {
      this.resume(undefined);
      return;
    }
    if (!leads) {
      // Fenced for now (it may resume in the same epoch), or another leadership: the pause stays until
      // the request ends, times out, or this node leads a new epoch.
      if (r.phase === 'requested')
        await this.advance(r, mod, 'aborted', {
          reason: `node ${r.from} no longer leads epoch ${r.epoch}`,
        });
      return;
    }
    if (r.phase === 'requested') {
      if (this.pause === undefined) {
        const timer = setTimeout(() => this.timeOut(), r.timeoutMs);
        this.pause = { request: r, timer };
        this.log?.warn(
          { shard: this.member.shard, to: r.to, timeoutMs: r.timeoutMs },
          'cluster: switchover requested; refusing new writes until the target has every record',
        );
      }
      await this.advance(r, mod, 'paused', { offset: this.plane.position().offset });
      return;
    }
    if (r.phase !== 'caught-up' || this.pause === undefined) return;
    const end = this.plane.position().offset;
    if (end > (r.offset ?? 0)) {
      // Records appended since the pause (an expiry, say): the target must have those too.
      await this.advance(r, mod, 'paused', { offset: end });
      return;
    }
    // Acknowledgements due for records the target holds go out before the release fences them.
    await this.plane.sync();
    await new Promise((resolve) => setImmediate(resolve));
    const released = await this.member.release(this.key, mod, nextPhase(r, 'released', { offset: end }));
    if (released) {
      this.log?.warn(
        { shard: this.member.shard, to: r.to, offset: end },
        'cluster: switchover: released the shard; the target takes it over',
      );
      this.resume(undefined);
    }
  }

  /** The target: waits until it has applied every record below the paused end, then says so. */
  private async catchUp(r: SwitchoverRequest, mod: number): Promise<void> {
    const offset = r.offset ?? 0;
    const deadline = Date.now() + r.timeoutMs;
    for (;;) {
      if (this.stopped || this.seenMod !== mod || Date.now() > deadline) return;
      const leader = this.member.leader;
      const applied =
        leader !== undefined && leader.node === r.from && leader.epoch === r.epoch
          ? this.plane.appliedFrom(leader.host, leader.port)
          : undefined;
      if (applied !== undefined && applied >= offset) {
        await this.plane.sync();
        if (await this.advance(r, mod, 'caught-up', { offset: applied }))
          this.log?.info(
            { shard: this.member.shard, from: r.from, offset: applied },
            'cluster: switchover: caught up with the primary',
          );
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, CATCH_UP_POLL_MS));
    }
  }

  /** The pause lasted the request's timeout: take writes again and say why. */
  private timeOut(): void {
    const r = this.pause?.request;
    if (r === undefined) return;
    this.resume(`the target ${r.to} did not catch up within ${r.timeoutMs} ms`);
    this.chain = this.chain
      .then(async () => {
        const stored = await this.read();
        const now = stored?.request;
        if (stored === undefined || now === undefined || now.from !== r.from || now.epoch !== r.epoch) return;
        if (now.phase === 'released' || now.phase === 'aborted') return;
        await this.advance(now, stored.modRevision, 'aborted', {
          reason: `the target ${r.to} did not catch up within ${r.timeoutMs} ms; ${r.from} takes writes again`,
        });
      })
      .catch((err: unknown) => {
        this.log?.warn({ err: (err as Error).message }, 'cluster: cannot mark the switchover aborted');
      });
  }

  /** Ends a pause (`why` logged when writes are taken again because of a failure). */
  private resume(why: string | undefined): void {
    const p = this.pause;
    if (p === undefined) return;
    clearTimeout(p.timer);
    this.pause = undefined;
    if (why !== undefined)
      this.log?.warn(
        { shard: this.member.shard, reason: why },
        'cluster: switchover aborted; taking writes again',
      );
  }
}
