#!/usr/bin/env node
/**
 * kv-server: opens the store in `--dir`, then serves it (protocol/PROTOCOL.md).
 *
 * Order of events: settings (exit 2 on a bad one; `--print-config` prints
 * them and exits 0) → the setup checks of preflight.ts (the ports are free,
 * the data directory is usable; exit 2 with one line, before anything is
 * created) → open the store, which recovers the keydir (the port is not
 * bound until this is done, so a client can never read a half-loaded
 * keydir) → listen → on SIGTERM/SIGINT: stop accepting, finish in-flight
 * requests, close the store (it syncs), exit 0.
 * The metrics endpoint (`--metrics-port`) starts after the server listens.
 * A second signal during shutdown exits at once with status 1.
 */
import { readFileSync } from 'node:fs';
import type pino from 'pino';
import type { ClusterNode } from '../cluster/node.js';
import type { StoreOptions } from '../engine/options.js';
import { openStore, type Store } from '../engine/store.js';
import { KvError } from '../errors.js';
import { packageVersion } from '../package-version.js';
import { MEMORY_REDUCER_MIN_GROWTH_BYTES } from '../protocol/limits.js';
import { type PrimaryAddress, parsePrimaryAddress } from '../replication/replica.js';
import { type ClusterSettings, clusterSettingsOf, joinCluster, joiningGate } from './cluster-mode.js';
import {
  type CommandLine,
  ConfigError,
  effectiveConfig,
  helpText,
  inFlagTerms,
  resolveCommandLine,
  type ServerConfig,
} from './config.js';
import { createLogger } from './log.js';
import { MemoryReducer } from './memory-reducer.js';
import type { MetricsEndpoint } from './metrics-http.js';
import { checkDataDir, checkPort, dataDirProblem, listenProblem, SetupError } from './preflight.js';
import { KvServer } from './server.js';

/** File-system errors of a setup that the operator fixes (exit 2, like a bad setting). */
const SETUP_ERRNOS = new Set(['EACCES', 'EPERM', 'EROFS', 'ENOTDIR', 'EEXIST', 'EISDIR']);

function fail(message: string, status: number): never {
  process.stderr.write(`kv-server: ${message}\n`);
  process.exit(status);
}

function storeOptions(config: ServerConfig, logger: pino.Logger): StoreOptions {
  const o: StoreOptions = { fsync: config.fsync, logger };
  if (Object.keys(config.compaction).length > 0) {
    // Checked while parsing (config-check.ts), by the store's rules.
    o.compaction = config.compaction;
  }
  o.fsyncIntervalMs = config.fsyncIntervalMs;
  o.maxSegmentBytes = config.maxSegmentBytes;
  o.cacheBytes = config.cacheBytes;
  o.slotCacheBytes = config.slotCacheBytes;
  return o;
}

async function main(): Promise<void> {
  let line: CommandLine;
  try {
    line = resolveCommandLine(process.argv.slice(2), process.env);
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message, 2);
    throw err;
  }
  if (line.action === 'help') {
    process.stdout.write(`${helpText()}\n`);
    return;
  }
  if (line.action === 'version') {
    process.stdout.write(`kv-server ${packageVersion()}\n`);
    return;
  }
  const config: ServerConfig = line.config;
  if (line.action === 'print-config') {
    process.stdout.write(`${JSON.stringify(effectiveConfig(config), null, 2)}\n`);
    return;
  }
  let tls: { cert: Buffer; key: Buffer } | undefined;
  if (config.tlsCert !== undefined && config.tlsKey !== undefined) {
    try {
      tls = { cert: readFileSync(config.tlsCert), key: readFileSync(config.tlsKey) };
    } catch (err) {
      fail(`cannot read the TLS certificate or key: ${(err as Error).message}`, 2);
    }
  }
  try {
    await checkPort('--port', config.host, config.port);
    if (config.metricsPort !== undefined) await checkPort('--metrics-port', config.host, config.metricsPort);
    checkDataDir(config.dir);
  } catch (err) {
    if (err instanceof SetupError) fail(err.message, 2);
    throw err;
  }
  let replicaOf: PrimaryAddress | undefined;
  if (config.replicaOf !== undefined) {
    try {
      replicaOf = parsePrimaryAddress(config.replicaOf);
    } catch (err) {
      fail(`bad setting --replica-of: ${(err as Error).message}`, 2);
    }
  }
  let clusterSettings: ClusterSettings | undefined;
  try {
    clusterSettings = clusterSettingsOf(config);
  } catch (err) {
    fail(`bad cluster setting: ${(err as Error).message}`, 2);
  }
  const log = await createLogger(config.logLevel, config.logFormat);
  if (line.configFile !== undefined)
    log.info({ file: line.configFile }, 'settings read from the config file');

  let store: Store;
  try {
    store = await openStore(config.dir, storeOptions(config, log));
  } catch (err) {
    if (err instanceof KvError) {
      const badSetting = err.code === 'INVALID_ARGUMENT';
      const message = badSetting ? inFlagTerms(err.message) : err.message;
      log.fatal({ code: err.code, dir: config.dir }, message);
      if (badSetting) fail(`bad setting: ${message}; see kv-server --help`, 2);
      fail(`cannot open ${config.dir}: ${message}`, 1);
    }
    const code = (err as NodeJS.ErrnoException).code;
    if (typeof code === 'string') {
      const message = dataDirProblem(config.dir, err);
      log.fatal({ code, dir: config.dir, path: (err as NodeJS.ErrnoException).path }, message);
      fail(message, SETUP_ERRNOS.has(code) ? 2 : 1);
    }
    throw err;
  }
  // The engine logged the recovery's figures; this says which directory they are about.
  log.info(
    { dir: config.dir, keys: store.size, segments: store.stats().segments.length },
    'data directory open',
  );

  const server = new KvServer(
    store,
    {
      host: config.host,
      port: config.port,
      maxFrameBytes: config.maxFrameBytes,
      maxClients: config.maxClients,
      idleTimeoutMs: config.idleTimeoutMs,
      password: config.password,
      tls,
      version: packageVersion(),
      slowlogThresholdMs: config.slowlogThresholdMs,
      replicaOf,
      minReplicasAck: config.minReplicasAck,
      minReplicasTimeoutMs: config.minReplicasTimeoutMs,
    },
    log,
  );
  // The metrics endpoint opens first, so the 'listening' line can name both ports.
  let metrics: MetricsEndpoint | undefined;
  let metricsPort: number | undefined;
  if (config.metricsPort !== undefined) {
    // Loaded only when enabled: prom-client adds ~60 ms to startup.
    const { MetricsEndpoint } = await import('./metrics-http.js');
    metrics = new MetricsEndpoint(server, log);
    try {
      metricsPort = (await metrics.listen(config.host, config.metricsPort)).port;
    } catch (err) {
      const message = listenProblem('--metrics-port', config.host, config.metricsPort, err);
      log.fatal({ code: (err as NodeJS.ErrnoException).code }, message);
      await store.close();
      fail(message, 2);
    }
  }
  // Signal handlers go in before the port opens: a SIGTERM sent as soon as the
  // 'listening' line appears must shut down cleanly, not meet the default action.
  // One that comes while the port is being opened waits until it is.
  let cluster: ClusterNode | undefined;
  let up = false;
  let pendingSignal: string | undefined;
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      log.warn({ signal }, 'second signal during shutdown; exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal, clients: server.clientCount }, 'shutting down');
    void (async () => {
      await cluster?.stop(); // hands leadership over at once (the lease is revoked)
      await Promise.all([server.close(), metrics?.close()]);
      await server.store.close(); // a replica's resync may have reopened it
      log.info('store closed; bye');
      process.exit(0);
    })().catch((err: unknown) => {
      log.fatal({ err }, 'shutdown failed');
      process.exit(1);
    });
  };
  const onSignal = (signal: string) => {
    if (up) stop(signal);
    else if (pendingSignal === undefined) pendingSignal = signal;
    else {
      log.warn({ signal }, 'second signal while starting; exiting now');
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  // Cluster mode: nothing keyed is served until etcd has said who leads.
  if (clusterSettings !== undefined) server.attachCluster(joiningGate(clusterSettings.shard));
  try {
    const address = await server.listen();
    up = true;
    if (pendingSignal !== undefined) {
      stop(pendingSignal);
      return;
    }
    log.info({ host: address.address, port: address.port, tls: tls !== undefined, metricsPort }, 'listening');
    if (config.idleGcMs > 0) {
      // Sealing counts as work: a sealed segment's hint (~20 MiB for a 64 MiB segment) is written
      // in the background after the last write, and dropped once written.
      const hinted = (): number => server.store.ordered.reduce((n, seg) => n + (seg.hinted ? 1 : 0), 0);
      new MemoryReducer(
        () => server.metrics.bytesIn + server.store.nextOffset + hinted(),
        log,
        config.idleGcMs,
        MEMORY_REDUCER_MIN_GROWTH_BYTES,
        () => server.store.releaseSpareBuffers(),
      ).start();
    }
    if (clusterSettings !== undefined) {
      cluster = await joinCluster(server, clusterSettings, config, address.port, log);
      server.attachCluster(cluster);
    }
  } catch (err) {
    if (err instanceof SetupError) {
      log.fatal(err.message);
      await server.close();
      await server.store.close();
      fail(err.message, 2);
    }
    // Taken by another process while the store was recovering (checkPort passed).
    const message = listenProblem('--port', config.host, config.port, err);
    log.fatal({ code: (err as NodeJS.ErrnoException).code }, message);
    await metrics?.close();
    await store.close();
    fail(message, 2);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`kv-server: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
