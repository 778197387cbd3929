/**
 * One node's membership in a shard, and the shard's leadership, kept in etcd.
 * Consensus is etcd's (Raft); this module only follows Patroni's rules on top
 * of a lease:
 *
 * - The node holds one lease. Its member key (address, epoch, offset) and,
 *   while it leads, the shard's leader key are bound to that lease, so both
 *   vanish when the node stops renewing, without anyone deleting them.
 * - Leadership is taken with a transaction that creates the leader key only if
 *   it does not exist. The key's create revision is the new **epoch**: unique
 *   and growing across the whole etcd cluster, so two leaderships never share
 *   an epoch.
 * - When the leader key is gone, the most advanced member campaigns first: a
 *   member defers while another live member of the shard advertises a higher
 *   (epoch, offset), or the same with a smaller node name, and campaigns
 *   anyway once it has deferred for two lease TTLs (the better one may be
 *   unable to reach etcd).
 * - **Planned switchover** (switchover.ts, switchover-request.ts). The
 *   primary gives the shard up with `release()`: one transaction deletes its
 *   leader key (if still this leadership's) and marks the request
 *   `released`. While such a request names the epoch this member last saw
 *   leading, only its target campaigns at once (if it holds the log up to
 *   the request's offset); the others defer for up to one lease TTL, then
 *   follow the usual order.
 * - **Fencing.** A renewal sent at time t keeps the lease alive in etcd until
 *   at least t + TTL (etcd counts from when it receives it). The node counts
 *   from the send time, on a monotonic clock that keeps running while the
 *   process is stopped, and `writable()` turns false at
 *   `t + TTL − safetyMargin`: a primary that cannot renew stops acknowledging
 *   writes before etcd can expire its lease and let another node lead. A
 *   process paused by SIGSTOP sees the time that passed the moment it runs
 *   again, so it acknowledges nothing after its lease could have expired.
 *
 * Everything runs on the event loop; the only state shared with the server is
 * read through `writable()`, `role` and the events.
 */
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { type Etcd3, EtcdLeaseInvalidError, type Lease, type Watcher } from 'etcd3';
import type { Logger } from 'pino';
import { KvError } from '../errors.js';
import { cancelWatch } from './etcd-client.js';
import { checkName, leaderKey, memberKey, membersPrefix, switchoverKey } from './etcd-keys.js';
import { DEFAULT_LEASE_TTL_MS, ETCD_WATCH_CANCEL_MS, MIN_LEASE_TTL_MS } from './limits.js';
import type { LeaderInfo, MemberInfo, MemberPosition } from './member-info.js';
import { parseSwitchover, type SwitchoverRequest } from './switchover-request.js';

export { DEFAULT_LEASE_TTL_MS, MIN_LEASE_TTL_MS };
/** Renewals per lease TTL: a lost renewal or two still leaves time before the fence. */
export const RENEWALS_PER_TTL = 4;
/** Longest an etcd call may take before it counts as failed. */
export const ETCD_CALL_TIMEOUT_MS = 1_000;

export type { LeaderInfo, MemberInfo, MemberPosition } from './member-info.js';

export type MemberRole = 'starting' | 'replica' | 'primary' | 'stopped';

export interface ShardMemberOptions {
  readonly etcd: Etcd3;
  readonly cluster: string;
  readonly shard: string;
  readonly node: string;
  /** Where clients and replicas reach this node. */
  readonly host: string;
  readonly port: number;
  /** Lease TTL in ms, a whole number of seconds (etcd's unit). Default DEFAULT_LEASE_TTL_MS. */
  readonly leaseTtlMs?: number;
  /** How long before the lease could expire a primary stops acknowledging writes. Default a quarter of the TTL. */
  readonly safetyMarginMs?: number;
  /** This node's log position, read when advertising and when ranking candidates. */
  readonly position: () => MemberPosition;
  /** Whether this node may lead now (e.g. false while a replica is still resyncing). Default always. */
  readonly canLead?: () => boolean;
  readonly log?: Logger;
  /** Monotonic milliseconds; tests may inject. */
  readonly now?: () => number;
}

const OPTION_NAMES = new Set([
  'etcd',
  'cluster',
  'shard',
  'node',
  'host',
  'port',
  'leaseTtlMs',
  'safetyMarginMs',
  'position',
  'canLead',
  'log',
  'now',
]);

export interface ShardMemberEvents {
  /** This node became the primary of its shard in `epoch`. */
  primary: [epoch: number];
  /** Another node leads (or nobody does yet: `leader` undefined). */
  replica: [leader: LeaderInfo | undefined];
  /** This node stopped being writable: its lease could expire, or it lost leadership. */
  fenced: [reason: string];
  /** This node leads again in the same `epoch`: it renewed the lease its leader key is bound to. */
  resumed: [epoch: number];
}

export class ShardMember extends EventEmitter<ShardMemberEvents> {
  readonly cluster: string;
  readonly shard: string;
  readonly node: string;
  private readonly etcd: Etcd3;
  private readonly o: ShardMemberOptions;
  private readonly ttlMs: number;
  private readonly marginMs: number;
  private readonly now: () => number;
  private lease: Lease | undefined;
  /** The lease's id as etcd reports it on keys bound to it. */
  private leaseId: string | undefined;
  /** Monotonic time until which etcd surely keeps the lease. */
  private validUntil = 0;
  private roleValue: MemberRole = 'starting';
  private epochValue = 0;
  private leaderValue: LeaderInfo | undefined;
  private timer: NodeJS.Timeout | undefined;
  private fenceTimer: NodeJS.Timeout | undefined;
  private watcher: Watcher | undefined;
  private ticking = false;
  /** A round was asked for while one ran (a watch event): run another at once. */
  private tickAgain = false;
  private deferringSince = 0;
  /** Since when this member defers to a switchover's target (at most one TTL), 0 when not. */
  private switchoverDeferSince = 0;
  /** The epoch of the last leader key seen (this node's own included); 0 before any. */
  private lastLeaderEpoch = 0;
  /** A switchover release is in flight: nothing more is acknowledged until it is known to have failed. */
  private releasing = false;

  constructor(options: ShardMemberOptions) {
    super();
    for (const k of Object.keys(options))
      if (!OPTION_NAMES.has(k)) throw new KvError('INVALID_ARGUMENT', `unknown ShardMember option "${k}"`);
    this.o = options;
    this.etcd = options.etcd;
    this.cluster = checkName('cluster name', options.cluster);
    this.shard = checkName('shard id', options.shard);
    this.node = checkName('node name', options.node);
    const ttl = options.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS;
    if (!Number.isInteger(ttl) || ttl < MIN_LEASE_TTL_MS || ttl % 1000 !== 0)
      throw new KvError(
        'INVALID_ARGUMENT',
        `leaseTtlMs must be a whole number of seconds ≥ ${MIN_LEASE_TTL_MS} ms, got ${String(ttl)}`,
      );
    this.ttlMs = ttl;
    this.marginMs = options.safetyMarginMs ?? Math.floor(ttl / 4);
    if (!Number.isFinite(this.marginMs) || this.marginMs <= 0 || this.marginMs >= ttl / 2)
      throw new KvError(
        'INVALID_ARGUMENT',
        `safetyMarginMs must be > 0 and < half the lease TTL, got ${this.marginMs}`,
      );
    this.now = options.now ?? (() => performance.now());
  }

  get role(): MemberRole {
    return this.roleValue;
  }

  /** The epoch this node leads in (0 when it does not lead). */
  get epoch(): number {
    return this.roleValue === 'primary' ? this.epochValue : 0;
  }

  /** The shard's leader as last seen (this node when it leads). */
  get leader(): LeaderInfo | undefined {
    return this.leaderValue;
  }

  /**
   * True only while this node leads and its lease surely holds for another
   * safety margin. Checked at the moment a write is acknowledged.
   */
  writable(): boolean {
    return this.roleValue === 'primary' && !this.releasing && this.leaseHolds();
  }

  /** The lease surely holds for another safety margin. */
  private leaseHolds(): boolean {
    return this.now() < this.validUntil - this.marginMs;
  }

  /** Registers, watches the leader key and starts the renewal loop. Resolves after the first round. */
  async start(): Promise<void> {
    if (this.roleValue !== 'starting')
      throw new KvError('INVALID_ARGUMENT', 'ShardMember.start() called twice');
    this.roleValue = 'replica';
    try {
      this.watcher = await this.etcd.watch().key(leaderKey(this.cluster, this.shard)).create();
      this.watcher.on('delete', () => void this.tick());
      this.watcher.on('put', () => void this.tick());
      this.watcher.on('error', () => {});
    } catch (err) {
      this.o.log?.warn({ err }, 'cluster: cannot watch the leader key yet; polling only');
    }
    await this.tick();
  }

  /** Leaves the shard: resigns leadership, revokes the lease, stops the loop. */
  async stop(): Promise<void> {
    if (this.roleValue === 'stopped') return;
    const wasPrimary = this.roleValue === 'primary';
    this.roleValue = 'stopped';
    clearTimeout(this.timer);
    clearTimeout(this.fenceTimer);
    if (wasPrimary) this.emit('fenced', 'stopped');
    await cancelWatch(this.watcher, ETCD_WATCH_CANCEL_MS);
    await this.lease?.revoke({ deadline: Date.now() + ETCD_CALL_TIMEOUT_MS }).catch(() => {});
    this.lease = undefined;
  }

  /**
   * Planned switchover: in one transaction, deletes the leader key if it is
   * still this leadership's and the switchover key `key` is still at
   * `modRevision`, and writes `value` there (keeping its lease). Nothing is
   * acknowledged from the moment it is sent. Resolves true when the leader
   * key is no longer this leadership's (this node stepped down), false when
   * a condition failed and the key is still its own (it leads on).
   * An etcd error steps down too: the outcome is unknown; if the key is still
   * this node's, the next round resumes leadership in the same epoch.
   */
  async release(key: string, modRevision: number, value: string): Promise<boolean> {
    if (this.roleValue !== 'primary') return false;
    const leader = leaderKey(this.cluster, this.shard);
    this.releasing = true;
    let released: boolean;
    try {
      const res = await this.etcd
        .if(leader, 'Create', '==', this.epochValue)
        .and(key, 'Mod', '==', modRevision)
        .then(this.etcd.delete().key(leader), this.etcd.put(key).value(value).ignoreLease())
        .commit();
      released = res.succeeded;
      if (!released) {
        // A retried transaction fails its conditions when its first attempt committed: look.
        const kv = (await this.etcd.get(leader).exec()).kvs[0];
        released = kv === undefined || Number(kv.create_revision) !== this.epochValue;
      }
    } catch (err) {
      this.releasing = false;
      this.stepDown(`switchover release failed: ${(err as Error).message}`);
      throw err;
    }
    this.releasing = false;
    if (released) this.stepDown('switched over: released the shard to the target');
    return released;
  }

  private stopped(): boolean {
    return this.roleValue === 'stopped';
  }

  /** One round: renew (or re-grant) the lease, advertise, look at the leader key, campaign if it is free. */
  private async tick(): Promise<void> {
    if (this.roleValue === 'stopped') return;
    if (this.ticking) {
      this.tickAgain = true;
      return;
    }
    this.ticking = true;
    clearTimeout(this.timer);
    try {
      await this.renew();
      if (this.now() < this.validUntil) await this.advertise();
      await this.lookAtLeader();
    } catch (err) {
      this.o.log?.warn({ err: (err as Error).message }, 'cluster: etcd round failed');
    } finally {
      this.ticking = false;
      const again = this.tickAgain;
      this.tickAgain = false;
      if (!this.stopped())
        this.timer = setTimeout(
          () => void this.tick(),
          again ? 0 : Math.floor(this.ttlMs / RENEWALS_PER_TTL),
        );
    }
  }

  /**
   * Renews the lease this node holds, or grants a new one when etcd says it is
   * gone. The old lease is tried first even when the fence has passed: etcd
   * may still hold it (a restart of etcd gives every lease a fresh TTL), and
   * then so does the leader key bound to it, which this node may resume.
   */
  private async renew(): Promise<void> {
    const sent = this.now();
    const deadline = { deadline: Date.now() + ETCD_CALL_TIMEOUT_MS };
    if (this.lease !== undefined && !this.lease.revoked()) {
      try {
        const res = await this.lease.keepaliveOnce(deadline);
        const ttl = Number(res.TTL) * 1000;
        if (ttl > 0) {
          this.setValidUntil(sent + Math.min(ttl, this.ttlMs));
          return;
        }
      } catch (err) {
        if (!(err instanceof EtcdLeaseInvalidError))
          throw new Error(`cannot renew the lease: ${(err as Error).message}`);
      }
      // etcd no longer has the lease: whatever was bound to it is gone.
      this.o.log?.warn({ shard: this.shard }, 'cluster: the lease expired in etcd; taking a new one');
      this.dropLease('lease lost');
    }
    if (this.roleValue === 'primary') this.stepDown('no lease');
    const lease = this.etcd.lease(this.ttlMs / 1000, { autoKeepAlive: false, ...deadline });
    lease.on('lost', () => {});
    let id: string;
    try {
      id = await lease.grant();
    } catch (err) {
      throw new Error(`cannot grant a lease: ${(err as Error).message}`);
    }
    this.lease = lease;
    this.leaseId = id;
    this.setValidUntil(sent + this.ttlMs);
  }

  private dropLease(reason: string): void {
    this.lease = undefined;
    this.leaseId = undefined;
    this.validUntil = 0;
    this.stepDown(reason);
  }

  private setValidUntil(t: number): void {
    this.validUntil = t;
    this.armFence();
  }

  /** Steps down the moment the lease stops being surely held (timers may fire a hair early: re-arm). */
  private armFence(): void {
    clearTimeout(this.fenceTimer);
    if (this.roleValue !== 'primary') return;
    if (!this.leaseHolds()) {
      this.stepDown('lease not renewed in time');
      return;
    }
    const fenceIn = this.validUntil - this.marginMs - this.now();
    this.fenceTimer = setTimeout(() => this.armFence(), Math.max(1, Math.ceil(fenceIn)));
  }

  private async advertise(): Promise<void> {
    const pos = this.o.position();
    const info: MemberInfo = { node: this.node, host: this.o.host, port: this.o.port, ...pos };
    await this.lease!.put(memberKey(this.cluster, this.shard, this.node)).value(JSON.stringify(info));
  }

  private async lookAtLeader(): Promise<void> {
    const key = leaderKey(this.cluster, this.shard);
    const res = await this.etcd.get(key).exec();
    const kv = res.kvs[0];
    if (kv !== undefined) {
      this.deferringSince = 0;
      this.switchoverDeferSince = 0;
      const leader = parseLeader(kv.value.toString(), Number(kv.create_revision));
      this.lastLeaderEpoch = leader.epoch;
      if (leader.node === this.node) {
        if (
          this.leaseId !== undefined &&
          String(kv.lease) === this.leaseId &&
          leader.epoch === this.epochValue
        ) {
          // Still ours, on the lease this node renews: nobody else can have led since.
          if (this.roleValue !== 'primary') this.resume();
          return;
        }
        // This node's name on a key it no longer holds (an earlier lease, or an
        // earlier run of this node): nobody acknowledges writes under it, so
        // free it now instead of leaving the shard without a primary until it expires.
        this.stepDown('the leader key is on another lease');
        await this.etcd
          .if(key, 'Create', '==', String(kv.create_revision))
          .then(this.etcd.delete().key(key))
          .commit();
        this.o.log?.warn(
          { shard: this.shard, epoch: leader.epoch },
          'cluster: removed a stale leader key of this node',
        );
        return;
      }
      if (this.roleValue === 'primary') this.stepDown(`node ${leader.node} leads epoch ${leader.epoch}`);
      if (this.leaderValue?.epoch !== leader.epoch || this.leaderValue.node !== leader.node) {
        this.leaderValue = leader;
        this.emit('replica', leader);
      }
      return;
    }
    this.stepDown('the leader key is gone');
    if (this.leaderValue !== undefined) {
      this.leaderValue = undefined;
      this.emit('replica', undefined);
    }
    if (!this.leaseHolds()) return;
    if (this.o.canLead && !this.o.canLead()) return;
    const switchover = await this.releasedSwitchover();
    if (switchover !== undefined) {
      // A planned switchover released the shard to its target: it alone campaigns at once.
      if (switchover.to === this.node && this.o.position().offset >= (switchover.offset ?? 0)) {
        await this.campaign();
        return;
      }
      if (switchover.to !== this.node) {
        // One TTL on its own clock: if the target does not come, the usual order (most advanced first) follows.
        if (this.switchoverDeferSince === 0) this.switchoverDeferSince = this.now();
        if (this.now() - this.switchoverDeferSince < this.ttlMs) return;
      }
    }
    if (await this.someoneBetter()) {
      if (this.deferringSince === 0) this.deferringSince = this.now();
      if (this.now() - this.deferringSince < 2 * this.ttlMs) return;
    }
    await this.campaign();
  }

  /**
   * Leads again in the same epoch after a fence: the leader key never left
   * this node's lease, which etcd has just renewed, so no other node led in
   * between and the log needs no new epoch.
   */
  private resume(): void {
    if (!this.leaseHolds()) return;
    this.roleValue = 'primary';
    this.leaderValue = { node: this.node, host: this.o.host, port: this.o.port, epoch: this.epochValue };
    this.armFence();
    this.o.log?.info({ shard: this.shard, epoch: this.epochValue }, 'cluster: lease renewed; leading again');
    this.emit('resumed', this.epochValue);
  }

  /** The shard's switchover request if it released the leadership this member last saw, else undefined. */
  private async releasedSwitchover(): Promise<SwitchoverRequest | undefined> {
    const json = await this.etcd.get(switchoverKey(this.cluster, this.shard)).string();
    const r = json === null ? undefined : parseSwitchover(json);
    if (r === undefined || r.phase !== 'released' || r.epoch !== this.lastLeaderEpoch) return undefined;
    return r;
  }

  /** Whether another live member advertises a higher (epoch, offset), or the same with a smaller name. */
  private async someoneBetter(): Promise<boolean> {
    const mine = this.o.position();
    const others = await this.etcd.getAll().prefix(membersPrefix(this.cluster, this.shard)).strings();
    for (const value of Object.values(others)) {
      let m: MemberInfo;
      try {
        m = JSON.parse(value) as MemberInfo;
      } catch {
        continue;
      }
      if (m.node === this.node) continue;
      if (m.epoch > mine.epoch) return true;
      if (m.epoch === mine.epoch && m.offset > mine.offset) return true;
      if (m.epoch === mine.epoch && m.offset === mine.offset && m.node < this.node) return true;
    }
    return false;
  }

  private async campaign(): Promise<void> {
    const key = leaderKey(this.cluster, this.shard);
    const value = JSON.stringify({ node: this.node, host: this.o.host, port: this.o.port });
    const sent = this.now();
    const res = await this.etcd.if(key, 'Create', '==', 0).then(this.lease!.put(key).value(value)).commit();
    if (!res.succeeded) return;
    // The transaction's revision is the leader key's create revision.
    this.epochValue = Number(res.header.revision);
    this.lastLeaderEpoch = this.epochValue;
    this.deferringSince = 0;
    this.switchoverDeferSince = 0;
    this.roleValue = 'primary';
    this.leaderValue = { node: this.node, host: this.o.host, port: this.o.port, epoch: this.epochValue };
    // The lease was renewed no later than `sent`'s round; keep the fence from that renewal.
    this.setValidUntil(Math.min(this.validUntil, sent + this.ttlMs));
    this.o.log?.info({ shard: this.shard, epoch: this.epochValue }, 'cluster: this node is now the primary');
    this.emit('primary', this.epochValue);
  }

  private stepDown(reason: string): void {
    if (this.roleValue !== 'primary') return;
    this.roleValue = 'replica';
    clearTimeout(this.fenceTimer);
    this.o.log?.warn({ shard: this.shard, epoch: this.epochValue, reason }, 'cluster: stepped down');
    this.emit('fenced', reason);
  }
}

function parseLeader(json: string, epoch: number): LeaderInfo {
  const v = JSON.parse(json) as { node: string; host: string; port: number };
  return { node: v.node, host: v.host, port: v.port, epoch };
}
