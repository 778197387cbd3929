/**
 * The opt-in Prometheus endpoint (`--metrics-port`): GET /metrics on a plain
 * node:http server bound to the same host as kv-server, in the Prometheus text
 * format (prom-client, a registry of its own, not the global one).
 *
 * The figures are INFO's: each scrape takes one `store.stats()` snapshot and
 * the server's counters, and copies them into the registry; counters that the
 * server keeps as totals are set (reset + inc), so a scrape never double
 * counts. The per-command latency histograms are ServerMetrics' own bucket
 * counters (each request timed by one performance.now() pair while this
 * endpoint is on), formatted at scrape time.
 *
 * Runs on the event loop; a scrape costs one stats() call (O(segments)).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { Counter, collectDefaultMetrics, Gauge, type Metric, Registry } from 'prom-client';
import type { StoreStats } from '../engine/store.js';
import { COMMAND_NAMES } from '../protocol/messages.js';
import { LATENCY_BUCKETS_SECONDS, type ServerMetrics } from './metrics.js';
import type { KvServer } from './server.js';

/** Every metric name the endpoint serves besides prom-client's process_* and nodejs_* defaults. */
export const METRIC_NAMES = [
  'segkv_commands_total',
  'segkv_command_duration_seconds',
  'segkv_slow_commands_total',
  'segkv_network_received_bytes_total',
  'segkv_network_sent_bytes_total',
  'segkv_connections',
  'segkv_connections_total',
  'segkv_connections_rejected_total',
  'segkv_keys',
  'segkv_expiring_keys',
  'segkv_segments',
  'segkv_live_bytes',
  'segkv_dead_bytes',
  'segkv_disk_bytes',
  'segkv_cache_hits_total',
  'segkv_cache_misses_total',
  'segkv_cache_bytes',
  'segkv_fsync_total',
  'segkv_fsync_seconds_total',
  'segkv_compaction_runs_total',
  'segkv_compaction_failures_total',
  'segkv_compaction_reclaimed_bytes_total',
  'segkv_compaction_running',
  'segkv_recovery_seconds',
  'segkv_recovery_truncated_bytes',
  'segkv_recovery_corruptions',
  'segkv_read_corruptions_total',
  'segkv_corrupt_reads_total',
  'segkv_replication_is_replica',
  'segkv_replication_offset',
  'segkv_replication_epoch',
  'segkv_replication_link_up',
  'segkv_replication_lag_records',
  'segkv_replication_connected_replicas',
  'segkv_replication_replica_lag_records',
  'segkv_replication_replica_lag_seconds',
] as const;

/** Sets a counter to a total the server keeps (prom-client counters only go up, so reset first). */
function setTotal(c: Counter, value: number, labels?: Record<string, string>): void {
  if (labels === undefined) {
    c.reset();
    c.inc(value);
  } else c.labels(labels).inc(value);
}

/**
 * segkv_command_duration_seconds, built at scrape time from ServerMetrics'
 * bucket counters (prom-client's registry formats any object with get()).
 */
function latencyHistogram(m: ServerMetrics): Metric {
  const name = 'segkv_command_duration_seconds';
  const help = 'Time from dispatch to reply (writes: to their acknowledgement), by command';
  const buckets = LATENCY_BUCKETS_SECONDS.length + 1;
  const collector = {
    name,
    help,
    type: 'histogram',
    get() {
      const values: { metricName: string; labels: Record<string, string | number>; value: number }[] = [];
      COMMAND_NAMES.forEach((command, i) => {
        let count = 0;
        for (let b = 0; b < buckets; b++) {
          count += m.latencyBuckets[i * buckets + b]!;
          const le = b < buckets - 1 ? LATENCY_BUCKETS_SECONDS[b]! : '+Inf';
          values.push({ metricName: `${name}_bucket`, labels: { le, command }, value: count });
        }
        values.push({ metricName: `${name}_sum`, labels: { command }, value: m.latencySums[i]! });
        values.push({ metricName: `${name}_count`, labels: { command }, value: count });
      });
      return { name, help, type: 'histogram', values, aggregator: 'sum' };
    },
  };
  return collector as unknown as Metric;
}

export class MetricsEndpoint {
  readonly registry = new Registry();
  private readonly http: Server;
  private snapshot: StoreStats | undefined;

  constructor(
    server: KvServer,
    private readonly log: Logger,
  ) {
    const r = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    const stats = (): StoreStats => {
      this.snapshot ??= server.store.stats();
      return this.snapshot;
    };
    const m = server.metrics;
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({
        name,
        help,
        registers: r,
        collect() {
          this.set(read());
        },
      });
    const total = (name: string, help: string, read: () => number) =>
      new Counter({
        name,
        help,
        registers: r,
        collect() {
          setTotal(this, read());
        },
      });

    new Counter({
      name: 'segkv_commands_total',
      help: 'Requests dispatched, by command',
      labelNames: ['command'],
      registers: r,
      collect() {
        this.reset();
        COMMAND_NAMES.forEach((command, i) => {
          setTotal(this, m.commands[i]!, { command });
        });
      },
    });
    this.registry.registerMetric(latencyHistogram(m));
    m.enableTiming();
    total('segkv_slow_commands_total', 'Commands at or over the slow-log threshold', () => m.slowCommands);
    total('segkv_network_received_bytes_total', 'Bytes received from clients', () => m.bytesIn);
    total('segkv_network_sent_bytes_total', 'Reply bytes written to clients', () => m.bytesOut);
    gauge('segkv_connections', 'Connections open now', () => server.counters().connected);
    total(
      'segkv_connections_total',
      'Connections accepted or refused',
      () => server.counters().totalConnections,
    );
    total(
      'segkv_connections_rejected_total',
      'Connections refused (max clients, shutting down)',
      () => server.counters().rejectedConnections,
    );
    gauge('segkv_keys', 'Keys in the keydir', () => stats().keys);
    gauge('segkv_expiring_keys', 'Keys with an expiry time', () => stats().expiringKeys);
    gauge('segkv_segments', 'Segment files', () => stats().segments.length);
    gauge('segkv_live_bytes', 'Bytes of records the keydir points at', () => stats().liveBytes);
    gauge('segkv_dead_bytes', 'Bytes of overwritten, deleted or expired records', () => stats().deadBytes);
    gauge('segkv_disk_bytes', 'Bytes of all segment files', () => stats().diskBytes);
    total('segkv_cache_hits_total', 'Reads answered by the value cache', () => stats().cache.hits);
    total('segkv_cache_misses_total', 'Reads that went to disk', () => stats().cache.misses);
    gauge('segkv_cache_bytes', 'Bytes held by the value cache', () => stats().cache.bytes);
    total('segkv_fsync_total', 'fsync calls on segment files', () => stats().fsync.count);
    total('segkv_fsync_seconds_total', 'Time spent in fsync', () => stats().fsync.totalMs / 1000);
    total('segkv_compaction_runs_total', 'Compactions completed', () => stats().compaction.runs);
    total('segkv_compaction_failures_total', 'Compactions that failed', () => stats().compaction.failures);
    total(
      'segkv_compaction_reclaimed_bytes_total',
      'Disk bytes freed by compaction',
      () => stats().compaction.reclaimedBytes,
    );
    gauge('segkv_compaction_running', '1 while a compaction runs', () =>
      stats().compaction.running ? 1 : 0,
    );
    gauge(
      'segkv_recovery_seconds',
      'Duration of the last recovery (startup)',
      () => stats().recovery.ms / 1000,
    );
    gauge(
      'segkv_recovery_truncated_bytes',
      'Bytes of torn tail dropped by the last recovery',
      () => stats().recovery.truncatedBytes,
    );
    gauge(
      'segkv_recovery_corruptions',
      'Corrupt records reported by the last recovery',
      () => stats().recovery.corruptions,
    );
    total(
      'segkv_read_corruptions_total',
      'Damaged records found by reads since startup (each logged once at error)',
      () => stats().corruption.records,
    );
    total(
      'segkv_corrupt_reads_total',
      'Reads answered CORRUPTION since startup',
      () => stats().corruption.reads,
    );

    const repl = () => server.replication.info();
    gauge('segkv_replication_is_replica', '1 on a replica, 0 on a primary', () =>
      repl().role === 'replica' ? 1 : 0,
    );
    gauge('segkv_replication_offset', "The log's next offset", () => repl().offset);
    gauge('segkv_replication_epoch', 'Current epoch', () => repl().epoch);
    gauge('segkv_replication_link_up', 'Replica: 1 while the link to the primary is up', () =>
      repl().link === 'up' ? 1 : 0,
    );
    gauge(
      'segkv_replication_lag_records',
      'Replica: records behind its primary as last heard',
      () => repl().lagRecords ?? 0,
    );
    gauge(
      'segkv_replication_connected_replicas',
      'Primary: replicas connected now',
      () => repl().connectedReplicas,
    );
    new Gauge({
      name: 'segkv_replication_replica_lag_records',
      help: 'Primary: records each replica lacks',
      labelNames: ['replica'],
      registers: r,
      collect() {
        this.reset();
        for (const x of repl().replicas) this.labels({ replica: x.address }).set(x.lagRecords);
      },
    });
    new Gauge({
      name: 'segkv_replication_replica_lag_seconds',
      help: 'Primary: age of the oldest record each replica lacks',
      labelNames: ['replica'],
      registers: r,
      collect() {
        this.reset();
        for (const x of repl().replicas) this.labels({ replica: x.address }).set(x.lagMs / 1000);
      },
    });

    this.http = createServer((req, res) => {
      if (req.method !== 'GET' || (req.url !== '/metrics' && !req.url?.startsWith('/metrics?'))) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('segkv: metrics are at GET /metrics\n');
        return;
      }
      this.scrape().then(
        (body) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(body),
        (err: unknown) => {
          this.log.error({ err }, 'metrics scrape failed');
          res.writeHead(500, { 'content-type': 'text/plain' }).end('segkv: metrics scrape failed\n');
        },
      );
    });
    this.http.on('error', (err) => log.error({ err }, 'metrics listener error'));
  }

  /** The metrics in the Prometheus text format, from one stats() snapshot. */
  async scrape(): Promise<string> {
    this.snapshot = undefined;
    try {
      return await this.registry.metrics();
    } finally {
      this.snapshot = undefined;
    }
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen({ host, port }, () => {
        this.http.off('error', reject);
        resolve(this.http.address() as AddressInfo);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.http.close(() => resolve());
      this.http.closeAllConnections();
    });
  }
}
