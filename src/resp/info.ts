/**
 * INFO for Redis clients: Redis's text format (`# Section` lines, then
 * `field:value` lines, sections separated by a blank line, CRLF endings)
 * built from the same figures as the native INFO map (KvServer.info), so the
 * two cannot disagree. Fields keep Redis's names where Redis has the figure
 * (`connected_clients`, `total_commands_processed`, `db0:keys=...`); segkv's
 * own figures are in `# Storage` and `# Compaction`. ioredis's ready check
 * reads `loading:0` from `# Persistence`.
 */
import { arch, platform, release } from 'node:os';
import { usedMemoryBytes } from '../server/memory-reducer.js';
import { REDIS_COMPAT_VERSION } from './commands/connection.js';

/** Sections in reply order; INFO with no argument, `default`, `all` or `everything` gives them all. */
export const RESP_INFO_SECTIONS = [
  'server',
  'clients',
  'memory',
  'persistence',
  'stats',
  'replication',
  'cpu',
  'storage',
  'compaction',
  'keyspace',
] as const;

type Native = Record<string, Record<string, unknown> | undefined>;

function num(v: unknown): number {
  return typeof v === 'number' ? v : 0;
}

function human(bytes: number): string {
  const units = ['B', 'K', 'M', 'G', 'T'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${bytes}B` : `${v.toFixed(2)}${units[u]}`;
}

const FSYNC_TO_APPENDFSYNC: Record<string, string> = { always: 'always', interval: 'everysec', never: 'no' };

function section(name: string, n: Native): [string, unknown][] {
  const server = n.server ?? {};
  const storage = n.storage ?? {};
  switch (name) {
    case 'server': {
      const uptime = Math.floor(num(server.uptimeMs) / 1000);
      return [
        ['redis_version', REDIS_COMPAT_VERSION],
        ['segkv_version', server.version],
        ['redis_mode', 'standalone'],
        ['os', `${platform() === 'linux' ? 'Linux' : platform()} ${release()} ${arch()}`],
        ['arch_bits', 64],
        ['process_id', server.pid],
        ['tcp_port', server.port],
        ['uptime_in_seconds', uptime],
        ['uptime_in_days', Math.floor(uptime / 86400)],
        ['node_version', server.node],
        ['dir', server.dir],
      ];
    }
    case 'clients': {
      const c = n.clients ?? {};
      return [
        ['connected_clients', c.connected],
        ['maxclients', c.maxClients],
        ['blocked_clients', 0],
      ];
    }
    case 'memory': {
      const used = usedMemoryBytes();
      const rss = process.memoryUsage.rss();
      return [
        ['used_memory', used],
        ['used_memory_human', human(used)],
        ['used_memory_rss', rss],
        ['used_memory_rss_human', human(rss)],
        ['maxmemory', 0],
        ['maxmemory_policy', 'noeviction'],
      ];
    }
    case 'persistence': {
      const c = n.compaction ?? {};
      const fsync = server.fsync as string | undefined;
      return [
        ['loading', 0],
        ['async_loading', 0],
        ['aof_enabled', 1],
        ['aof_rewrite_in_progress', c.running ? 1 : 0],
        ['aof_last_bgrewrite_status', c.lastError ? 'err' : 'ok'],
        ['appendfsync', FSYNC_TO_APPENDFSYNC[fsync ?? ''] ?? fsync],
        ['rdb_bgsave_in_progress', 0],
        ['rdb_changes_since_last_save', 0],
      ];
    }
    case 'stats': {
      const s = n.stats ?? {};
      const c = n.clients ?? {};
      return [
        ['total_connections_received', c.totalConnections],
        ['total_commands_processed', s.commandsProcessed],
        ['instantaneous_ops_per_sec', 0],
        ['total_net_input_bytes', s.bytesIn],
        ['total_net_output_bytes', s.bytesOut],
        ['rejected_connections', c.rejectedConnections],
        ['slow_commands', s.slowCommands],
      ];
    }
    case 'replication': {
      // segkv's replication section (src/replication/replication.ts) in Redis's words.
      const r = n.replication ?? {};
      if (r.role === 'replica') {
        const [host, port] = String(r.primary ?? ':').split(/:(?=[^:]*$)/);
        return [
          ['role', 'slave'],
          ['master_host', host],
          ['master_port', port],
          ['master_link_status', r.link === 'up' ? 'up' : 'down'],
          ['master_last_io_seconds_ago', Math.floor(num(r.lastContactMs) / 1000)],
          ['master_sync_in_progress', r.link === 'sync' ? 1 : 0],
          ['slave_repl_offset', r.offset],
          ['slave_read_only', 1],
          ['connected_slaves', 0],
          ['master_repl_offset', r.offset],
        ];
      }
      const replicas = Array.isArray(r.replicas) ? (r.replicas as Record<string, unknown>[]) : [];
      return [
        ['role', 'master'],
        ['connected_slaves', replicas.length],
        ...replicas.map((x, i): [string, unknown] => {
          const [ip, port] = String(x.address).split(/:(?=[^:]*$)/);
          return [
            `slave${i}`,
            `ip=${ip},port=${port},state=online,offset=${num(x.ackedOffset)},lag=${Math.floor(num(x.lagMs) / 1000)}`,
          ];
        }),
        ['master_replid', r.logId ?? ''],
        ['master_repl_offset', r.offset ?? storage.nextOffset],
      ];
    }
    case 'cpu': {
      const u = process.cpuUsage();
      return [
        ['used_cpu_sys', (u.system / 1e6).toFixed(6)],
        ['used_cpu_user', (u.user / 1e6).toFixed(6)],
      ];
    }
    case 'storage': {
      const fsync = (storage.fsync ?? {}) as Record<string, unknown>;
      const rec = (storage.recovery ?? {}) as Record<string, unknown>;
      return [
        ['segments', storage.segments],
        ['disk_bytes', storage.diskBytes],
        ['live_bytes', storage.liveBytes],
        ['dead_bytes', storage.deadBytes],
        ['first_offset', storage.firstOffset],
        ['next_offset', storage.nextOffset],
        ['fsync_mode', fsync.mode],
        ['fsync_count', fsync.count],
        ['fsync_avg_ms', fsync.avgMs],
        ['recovery_ms', rec.ms],
        ['recovery_truncated_bytes', rec.truncatedBytes],
        ['recovery_corruptions', rec.corruptions],
      ];
    }
    case 'compaction': {
      const c = n.compaction ?? {};
      if (!c.available) return [['compaction_available', 0]];
      return [
        ['compaction_available', 1],
        ['compaction_running', c.running ? 1 : 0],
        ['compaction_runs', c.runs],
        ['compaction_failures', c.failures],
        ['compaction_reclaimed_bytes', c.reclaimedBytes],
        ['compaction_last_duration_ms', c.lastDurationMs],
      ];
    }
    case 'keyspace': {
      const k = n.keyspace ?? {};
      const keys = num(k.keys);
      return keys > 0 ? [['db0', `keys=${keys},expires=${num(k.expiringKeys)},avg_ttl=0`]] : [];
    }
    default:
      return [];
  }
}

const TITLES: Record<string, string> = {
  cpu: 'CPU',
};

/**
 * The INFO text for the sections asked for (lower case), from the native
 * INFO map. Unknown sections contribute nothing, as in Redis.
 */
export function infoText(asked: readonly string[], native: Native): string {
  const all = asked.length === 0 || asked.some((s) => s === 'all' || s === 'everything' || s === 'default');
  const wanted = RESP_INFO_SECTIONS.filter((s) => all || asked.includes(s));
  const parts: string[] = [];
  for (const name of wanted) {
    const title = TITLES[name] ?? name[0]!.toUpperCase() + name.slice(1);
    const lines = section(name, native).map(([k, v]) => `${k}:${v === undefined || v === null ? '' : v}\r\n`);
    parts.push(`# ${title}\r\n${lines.join('')}`);
  }
  return parts.join('\r\n');
}
