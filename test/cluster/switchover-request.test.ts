/** The switchover request's format and the choice of its target (switchover-request.ts). */
import { describe, expect, it } from 'vitest';
import type { MemberInfo } from '../../src/cluster/shard-member.js';
import {
  chooseTarget,
  newSwitchover,
  nextPhase,
  parseSwitchover,
  SWITCHOVER_VERSION,
} from '../../src/cluster/switchover-request.js';

const member = (node: string, epoch: number, offset: number): MemberInfo => ({
  node,
  host: '127.0.0.1',
  port: 7000,
  epoch,
  offset,
});

describe('switchover request', () => {
  it('round-trips through its phases', () => {
    const r = newSwitchover('a1', 'a2', 42, 5_000);
    expect(parseSwitchover(JSON.stringify(r))).toEqual(r);
    expect(parseSwitchover(nextPhase(r, 'paused', { offset: 9 }))).toEqual({
      ...r,
      phase: 'paused',
      offset: 9,
    });
  });

  it('ignores anything that is not a valid request', () => {
    const ok = {
      version: SWITCHOVER_VERSION,
      from: 'a',
      to: 'b',
      epoch: 1,
      timeoutMs: 1000,
      phase: 'paused',
    };
    for (const bad of [
      'not json',
      'null',
      JSON.stringify({ ...ok, version: 2 }),
      JSON.stringify({ ...ok, to: 'a' }),
      JSON.stringify({ ...ok, phase: 'done' }),
      JSON.stringify({ ...ok, epoch: -1 }),
      JSON.stringify({ ...ok, offset: 1.5 }),
      JSON.stringify({ ...ok, reason: 7 }),
    ])
      expect(parseSwitchover(bad), bad).toBeUndefined();
    expect(parseSwitchover(JSON.stringify(ok))).toEqual(ok);
  });

  it('refuses a timeout out of bounds and bad names', () => {
    expect(() => newSwitchover('a1', 'a2', 1, 10)).toThrow(/timeout must be/);
    expect(() => newSwitchover('a1', 'a/2', 1, 5_000)).toThrow(/node name/);
  });

  it('targets the most advanced replica unless one is named', () => {
    const members = [member('p', 9, 100), member('c', 9, 90), member('b', 9, 95), member('a', 8, 200)];
    expect(chooseTarget('s', 'p', members, undefined).node).toBe('b');
    expect(chooseTarget('s', 'p', [...members, member('bb', 9, 95)], undefined).node).toBe('b');
    expect(chooseTarget('s', 'p', members, 'a').node).toBe('a');
    expect(() => chooseTarget('s', 'p', members, 'p')).toThrow(/p already is the primary of shard s/);
    expect(() => chooseTarget('s', 'p', members, 'z')).toThrow(
      /z is not a live member of shard s \(its replicas: c, b, a\)/,
    );
    expect(() => chooseTarget('s', 'p', [member('p', 1, 1)], undefined)).toThrow(/has no replica/);
  });
});
