/**
 * What a shard member advertises in etcd and what it reads back: its
 * position in the log, its member key's value, the leader key's value. Shared
 * by the member (shard-member.ts), the switchover (switchover-request.ts) and
 * the state readers (state.ts), so none of them imports another for a type.
 */
/** Where a member is in the log, for choosing the most advanced one. */
export interface MemberPosition {
  readonly epoch: number;
  readonly offset: number;
}

/** What a member advertises in its member key (and the leader in the leader key). */
export interface MemberInfo extends MemberPosition {
  readonly node: string;
  readonly host: string;
  readonly port: number;
}

/** The shard's current leader, as read from etcd. */
export interface LeaderInfo {
  readonly node: string;
  readonly host: string;
  readonly port: number;
  /** The leader key's create revision. */
  readonly epoch: number;
}
