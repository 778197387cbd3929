/**
 * RESP's CLUSTER command, as Redis Cluster answers it, over segkv's cluster
 * mode (src/cluster/): SLOTS (what ioredis's Cluster and `redis-cli -c`
 * read), SHARDS, KEYSLOT and INFO. Outside cluster mode every subcommand
 * says what Redis says: `ERR This instance has cluster support disabled`.
 */
import { keySlot, SLOT_COUNT } from '../../cluster/slots.js';
import { command, type RespCommand, type RespSession } from '../command.js';
import { err, type Reply, RespMap } from '../reply.js';

const CLUSTER = { group: 'cluster', since: '3.0.0' };

function gate(s: RespSession) {
  const cluster = s.server.cluster;
  if (cluster === undefined) throw err('This instance has cluster support disabled');
  return cluster;
}

function nodeReply(n: { node: string; host: string; port: number }): Reply {
  return [Buffer.from(n.host), n.port, Buffer.from(n.node)];
}

const SUBCOMMANDS: readonly RespCommand[] = [
  command(
    'cluster|slots',
    2,
    'loading stale',
    [0, 0, 0],
    {
      ...CLUSTER,
      summary: 'Get array of Cluster slot to node mappings',
      complexity: 'O(N) where N is the total number of Cluster nodes',
      acl: 'slow',
    },
    (s) =>
      gate(s)
        .slotOwners()
        .filter((o) => o.primary !== undefined)
        .map((o) => [o.range[0], o.range[1], nodeReply(o.primary!), ...o.replicas.map(nodeReply)]),
  ),
  command(
    'cluster|shards',
    2,
    'loading stale',
    [0, 0, 0],
    {
      ...CLUSTER,
      since: '7.0.0',
      summary: 'Get array of cluster slots to node mappings',
      complexity: 'O(N) where N is the total number of cluster nodes',
      acl: 'slow',
    },
    (s) => {
      const byShard = new Map<string, { slots: number[]; nodes: Reply[] }>();
      for (const o of gate(s).slotOwners()) {
        let shard = byShard.get(o.shard);
        if (shard === undefined) {
          const node = (n: { node: string; host: string; port: number }, role: string) =>
            new RespMap([
              ['id', Buffer.from(n.node)],
              ['port', n.port],
              ['ip', Buffer.from(n.host)],
              ['endpoint', Buffer.from(n.host)],
              ['role', Buffer.from(role)],
              ['health', Buffer.from('online')],
            ]);
          shard = {
            slots: [],
            nodes: [
              ...(o.primary ? [node(o.primary, 'master')] : []),
              ...o.replicas.map((r) => node(r, 'replica')),
            ],
          };
          byShard.set(o.shard, shard);
        }
        shard.slots.push(o.range[0], o.range[1]);
      }
      return [...byShard.values()].map(
        (sh) =>
          new RespMap([
            ['slots', sh.slots],
            ['nodes', sh.nodes],
          ]),
      );
    },
  ),
  command(
    'cluster|keyslot',
    3,
    'stale',
    [0, 0, 0],
    {
      ...CLUSTER,
      summary: 'Returns the hash slot of the specified key',
      complexity: 'O(N) where N is the number of bytes in the key',
      synopsis: 'key',
      acl: 'slow',
    },
    (s, argv) => {
      gate(s);
      return keySlot(argv[2]!);
    },
  ),
  command(
    'cluster|info',
    2,
    'loading stale',
    [0, 0, 0],
    { ...CLUSTER, summary: 'Provides info about Redis Cluster node state', acl: 'slow' },
    (s) => {
      const owners = gate(s).slotOwners();
      const served = owners
        .filter((o) => o.primary !== undefined)
        .reduce((n, o) => n + o.range[1] - o.range[0] + 1, 0);
      const shards = new Set(owners.map((o) => o.shard)).size;
      const nodes = new Set(
        owners.flatMap((o) => [...(o.primary ? [o.primary.node] : []), ...o.replicas.map((r) => r.node)]),
      ).size;
      const lines = [
        `cluster_state:${served === SLOT_COUNT ? 'ok' : 'fail'}`,
        `cluster_slots_assigned:${SLOT_COUNT}`,
        `cluster_slots_ok:${served}`,
        'cluster_slots_pfail:0',
        `cluster_slots_fail:${SLOT_COUNT - served}`,
        `cluster_known_nodes:${nodes}`,
        `cluster_size:${shards}`,
      ];
      return Buffer.from(`${lines.join('\r\n')}\r\n`);
    },
  ),
];

export const CLUSTER_COMMAND: RespCommand = command(
  'cluster',
  -2,
  '',
  [0, 0, 0],
  { ...CLUSTER, summary: 'A container for cluster commands', complexity: 'Depends on subcommand.' },
  (s) => {
    gate(s);
    throw err('unknown subcommand. Try CLUSTER HELP.');
  },
  SUBCOMMANDS,
);
