/**
 * FORMAT: a planned switchover of one shard (`kv-cluster failover`), kept in
 * etcd at `/segkv/<cluster>/shards/<s>/switchover` as JSON, bound to the
 * lease of the kv-cluster process that asked (so it vanishes if that process
 * dies), and moved through its phases by compare-and-set transactions on its
 * mod revision — each phase is written by exactly one party:
 *
 * | phase       | written by     | means                                                    |
 * | ----------- | -------------- | -------------------------------------------------------- |
 * | `requested` | kv-cluster     | hand the shard from `from` (leading `epoch`) to `to`      |
 * | `paused`    | the primary    | it refuses new writes; its log ends at `offset`          |
 * | `caught-up` | the target     | it has applied (and synced) every record below `offset`   |
 * | `released`  | the primary    | it stepped down and deleted its leader key (one txn)      |
 * | `aborted`   | the primary    | it takes writes again; `reason` says why                  |
 *
 * | field       | type    | rule                                                  |
 * | ----------- | ------- | ----------------------------------------------------- |
 * | `version`   | integer | SWITCHOVER_VERSION; any other value is ignored        |
 * | `from`,`to` | name    | node names (etcd-keys.ts), different                  |
 * | `epoch`     | integer | the leader key's create revision when requested       |
 * | `timeoutMs` | integer | how long the primary may refuse writes for it         |
 * | `phase`     | string  | one of the phases above                               |
 * | `offset`    | integer | present from `paused` on                              |
 * | `reason`    | string  | present when `aborted`                                |
 *
 * While a `released` request names the epoch a member last saw leading, the
 * election (shard-member.ts) lets only `to` campaign at once, and only if
 * it holds the log up to `offset`; the others defer for one lease TTL, then
 * the usual order (most advanced first) applies.
 */
import { KvError } from '../errors.js';
import { checkName } from './etcd-keys.js';
import type { MemberInfo, MemberPosition } from './member-info.js';

/** Version of the switchover JSON. */
export const SWITCHOVER_VERSION = 1;
/** Default for how long the primary may refuse writes while the target catches up (kv-cluster --timeout-ms). */
export const DEFAULT_SWITCHOVER_TIMEOUT_MS = 10_000;
/** Bounds of --timeout-ms: shorter cannot cover an etcd round trip or two; longer keeps writes refused too long. */
export const MIN_SWITCHOVER_TIMEOUT_MS = 500;
export const MAX_SWITCHOVER_TIMEOUT_MS = 120_000;

export type SwitchoverPhase = 'requested' | 'paused' | 'caught-up' | 'released' | 'aborted';
const PHASES: readonly SwitchoverPhase[] = ['requested', 'paused', 'caught-up', 'released', 'aborted'];

export interface SwitchoverRequest {
  readonly version: number;
  readonly from: string;
  readonly to: string;
  readonly epoch: number;
  readonly timeoutMs: number;
  readonly phase: SwitchoverPhase;
  readonly offset?: number;
  readonly reason?: string;
}

/** A request as read from etcd, with the mod revision its next phase is conditioned on. */
export interface StoredSwitchover {
  readonly request: SwitchoverRequest;
  readonly modRevision: number;
}

/** Parses the key's value; undefined (never a throw) for anything that is not a valid request. */
export function parseSwitchover(json: string): SwitchoverRequest | undefined {
  let v: Partial<Record<keyof SwitchoverRequest, unknown>>;
  try {
    v = JSON.parse(json) as typeof v;
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null || v.version !== SWITCHOVER_VERSION) return undefined;
  const int = (x: unknown) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
  if (typeof v.from !== 'string' || typeof v.to !== 'string' || v.from === v.to) return undefined;
  if (!int(v.epoch) || !int(v.timeoutMs) || !PHASES.includes(v.phase as SwitchoverPhase)) return undefined;
  if (v.offset !== undefined && !int(v.offset)) return undefined;
  if (v.reason !== undefined && typeof v.reason !== 'string') return undefined;
  return v as SwitchoverRequest;
}

/** The request's next phase, as JSON. */
export function nextPhase(
  r: SwitchoverRequest,
  phase: SwitchoverPhase,
  extra: { offset?: number; reason?: string } = {},
): string {
  return JSON.stringify({ ...r, phase, ...extra });
}

/** A new request; throws INVALID_ARGUMENT on bad names or timeout. */
export function newSwitchover(from: string, to: string, epoch: number, timeoutMs: number): SwitchoverRequest {
  checkName('node name', from);
  checkName('node name', to);
  if (
    !Number.isInteger(timeoutMs) ||
    timeoutMs < MIN_SWITCHOVER_TIMEOUT_MS ||
    timeoutMs > MAX_SWITCHOVER_TIMEOUT_MS
  )
    throw new KvError(
      'INVALID_ARGUMENT',
      `the switchover timeout must be ${MIN_SWITCHOVER_TIMEOUT_MS}..${MAX_SWITCHOVER_TIMEOUT_MS} ms, got ${timeoutMs}`,
    );
  return { version: SWITCHOVER_VERSION, from, to, epoch, timeoutMs, phase: 'requested' };
}

/** Whether `a` is further along the log than `b` (epoch, then offset; ties go to the smaller name). */
export function moreAdvanced(
  a: MemberPosition & { node: string },
  b: MemberPosition & { node: string },
): boolean {
  if (a.epoch !== b.epoch) return a.epoch > b.epoch;
  if (a.offset !== b.offset) return a.offset > b.offset;
  return a.node < b.node;
}

/**
 * The replica a switchover hands the shard to: `to` when given (it must be a
 * live member other than the primary), else the most advanced replica.
 * Throws INVALID_ARGUMENT saying what is missing.
 */
export function chooseTarget(
  shard: string,
  primary: string,
  members: readonly MemberInfo[],
  to: string | undefined,
): MemberInfo {
  const replicas = members.filter((m) => m.node !== primary);
  const names = replicas.map((m) => m.node).join(', ') || 'none';
  if (to !== undefined) {
    if (to === primary)
      throw new KvError('INVALID_ARGUMENT', `${to} already is the primary of shard ${shard}`);
    const target = replicas.find((m) => m.node === to);
    if (target === undefined)
      throw new KvError(
        'INVALID_ARGUMENT',
        `${to} is not a live member of shard ${shard} (its replicas: ${names})`,
      );
    return target;
  }
  let best: MemberInfo | undefined;
  for (const m of replicas) if (best === undefined || moreAdvanced(m, best)) best = m;
  if (best === undefined)
    throw new KvError(
      'INVALID_ARGUMENT',
      `shard ${shard} has no replica to switch over to (start another node with --shard ${shard})`,
    );
  return best;
}
