/**
 * The split-brain check of torture:cluster and the cluster tests
 * (tools/lib/ack-probe.ts) on hand-made probe records: it must flag two
 * nodes acknowledging in one epoch and an older epoch acknowledging a write
 * sent after a newer epoch's acknowledgement came back, and pass a clean
 * failover (the old primary's last ack before the new one's first).
 */
import { describe, expect, it } from 'vitest';
import { splitBrain, type WriteProbe } from '../../tools/lib/ack-probe.js';

const ack = (node: string, epoch: number | undefined, sent: number, recv = sent + 5): WriteProbe => ({
  node,
  shard: 's1',
  sent,
  recv,
  ok: true,
  ...(epoch !== undefined && { epoch }),
});

describe('splitBrain', () => {
  it('passes a failover where the old epoch stops before the new one acknowledges', () => {
    const writes = [
      ack('a', 5, 100),
      ack('a', 5, 200),
      { node: 'a', shard: 's1', sent: 300, recv: 301, ok: false, code: 'CLUSTERDOWN' },
      ack('b', 9, 2500),
      ack('b', 9, 2600),
      // In flight across the switch: sent before the new epoch's first ack came back.
      ack('a', 5, 2504, 2700),
      // Unattributed acks are not judged here.
      ack('a', undefined, 3000),
      { ...ack('a', 5, 99), shard: 's2' },
    ];
    expect(splitBrain(writes)).toEqual([]);
  });

  it('flags an old epoch acknowledging a write sent after the new epoch acknowledged one', () => {
    const bad = splitBrain([ack('a', 5, 100), ack('b', 9, 2500), ack('a', 5, 2600)]);
    expect(bad).toHaveLength(1);
    expect(bad[0]).toMatch(
      /a acknowledged a write in epoch 5 sent 95 ms after b had acknowledged one in the newer epoch 9/,
    );
  });

  it('flags one epoch acknowledged by two nodes', () => {
    expect(splitBrain([ack('a', 5, 100), ack('b', 5, 200)])).toEqual([
      'shard s1: epoch 5 acknowledged by a and by b',
    ]);
  });
});
