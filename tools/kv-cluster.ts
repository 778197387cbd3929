#!/usr/bin/env node
/**
 * kv-cluster: operates a segkv cluster through etcd, which holds its slot map,
 * its members and each shard's leader (src/cluster/). `create` writes the slot
 * map of a new cluster; `status` shows shards, primaries, replicas, epochs,
 * offsets and health; `failover` hands a shard to a replica with no lost
 * write (tools/lib/switchover.ts).
 */
import { openEtcd } from '../src/cluster/etcd-client.js';
import { checkName } from '../src/cluster/etcd-keys.js';
import { SlotMap } from '../src/cluster/slot-map.js';
import { formatRanges, SLOT_COUNT } from '../src/cluster/slots.js';
import { type ClusterState, createCluster, readClusterState } from '../src/cluster/state.js';
import {
  DEFAULT_SWITCHOVER_TIMEOUT_MS,
  MAX_SWITCHOVER_TIMEOUT_MS,
  MIN_SWITCHOVER_TIMEOUT_MS,
} from '../src/cluster/switchover-request.js';
import { EXIT_OK, EXIT_PROBLEMS, integerOption, parseCommandLine, runTool, UsageError } from './lib/cli.js';
import { runSwitchover } from './lib/switchover.js';

const HELP = `Usage: kv-cluster COMMAND [options]

Operates a segkv cluster. etcd holds the cluster's slot map, its members and
the primary of each shard; kv-server nodes join with
--cluster NAME --etcd URL --shard ID.

Commands:
  create --shards N|ID,ID,...   Write the slot map of a new cluster: the ${SLOT_COUNT}
                                hash slots split evenly over the shards (named
                                s1..sN when a count is given). Refused if the
                                cluster already exists.
  status                        Shards with their slot ranges, primary, replicas,
                                epochs, offsets and lag, and a planned switchover
                                in progress (its phase). Exit 1 when a shard has
                                no primary.
  failover --shard ID [--to NODE] [--timeout-ms MS]
                                Planned switchover (Redis's CLUSTER FAILOVER,
                                Patroni's switchover): the primary refuses new
                                writes (clients retry), the target replica (--to,
                                default the most advanced one) catches up with
                                every record, then takes the shard in a new
                                epoch; the old primary follows it. No write it
                                acknowledged is lost, with or without
                                --min-replicas-ack. Prints the new primary and
                                the time taken; exit 1 if the target did not
                                catch up within --timeout-ms (default
                                ${DEFAULT_SWITCHOVER_TIMEOUT_MS}): the old primary then takes writes again.

Options:
  --etcd URL[,URL...]  etcd endpoints (default: $SEGKV_ETCD, else http://127.0.0.1:2379).
  --cluster NAME       Cluster name (default: $SEGKV_CLUSTER, else "segkv").
  --json               Print one JSON object instead of text.
  --help, -h           Show this help.

Exit status: 0 done, 1 a problem was found (status), the switchover failed or
timed out, or etcd refused; 2 usage error.
`;

const OPTIONS = {
  etcd: { type: 'string' },
  cluster: { type: 'string' },
  shards: { type: 'string' },
  shard: { type: 'string' },
  to: { type: 'string' },
  'timeout-ms': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** How long kv-cluster waits for etcd before saying it cannot reach it. */
const ETCD_TIMEOUT_MS = 5_000;

function shardIds(text: string | undefined): string[] {
  if (text === undefined) throw new UsageError('create needs --shards N or --shards ID,ID,...');
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    if (n < 1 || n > SLOT_COUNT) throw new UsageError(`--shards must be 1..${SLOT_COUNT}, got ${text}`);
    return Array.from({ length: n }, (_, i) => `s${i + 1}`);
  }
  return text.split(',').map((s) => s.trim());
}

function statusText(state: ClusterState): { text: string; healthy: boolean } {
  const lines = [`cluster ${state.cluster}: ${state.shards.length} shard(s), ${SLOT_COUNT} slots`];
  let healthy = true;
  for (const s of state.shards) {
    const replicas = s.members.filter((m) => m.node !== s.leader?.node);
    const primary = s.members.find((m) => m.node === s.leader?.node);
    const health =
      s.leader === undefined
        ? 'NO PRIMARY (failover pending or no node)'
        : replicas.length === 0
          ? 'ok, no replica'
          : 'ok';
    if (s.leader === undefined) healthy = false;
    lines.push(`shard ${s.id}  slots ${formatRanges(s.slots)}  ${health}`);
    if (s.leader !== undefined)
      lines.push(
        `  primary  ${s.leader.node}  ${s.leader.host}:${s.leader.port}  epoch ${s.leader.epoch}` +
          (primary ? `  offset ${primary.offset}` : ''),
      );
    for (const r of replicas) {
      const lag = primary ? `  lag ${Math.max(0, primary.offset - r.offset)} records` : '';
      lines.push(`  replica  ${r.node}  ${r.host}:${r.port}  epoch ${r.epoch}  offset ${r.offset}${lag}`);
    }
    const sw = s.switchover;
    if (sw !== undefined)
      lines.push(
        `  switchover  ${sw.from} -> ${sw.to}  ${sw.phase}` +
          (sw.phase === 'paused' || sw.phase === 'caught-up'
            ? ' (the primary refuses writes: CLUSTERDOWN, retried)'
            : '') +
          (sw.offset !== undefined ? `  at offset ${sw.offset}` : '') +
          (sw.reason !== undefined ? `  (${sw.reason})` : ''),
      );
  }
  return { text: `${lines.join('\n')}\n`, healthy };
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(argv, OPTIONS);
  if (values.help) {
    process.stdout.write(HELP);
    return EXIT_OK;
  }
  const [command, ...extra] = positionals;
  if (command === undefined)
    throw new UsageError('name a command: create, status or failover (kv-cluster --help)');
  for (const flag of ['shard', 'to', 'timeout-ms'] as const)
    if (values[flag] !== undefined && command !== 'failover')
      throw new UsageError(`--${flag} is for failover`);
  if (extra.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}`);
  const hosts = (
    (values.etcd as string | undefined) ??
    process.env.SEGKV_ETCD ??
    'http://127.0.0.1:2379'
  ).split(',');
  const cluster = (values.cluster as string | undefined) ?? process.env.SEGKV_CLUSTER ?? 'segkv';
  const json = values.json === true;
  const etcd = openEtcd(hosts, ETCD_TIMEOUT_MS);
  try {
    switch (command) {
      case 'create': {
        const map = SlotMap.even(shardIds(values.shards as string | undefined));
        await createCluster(etcd, cluster, map);
        process.stdout.write(
          json
            ? `${JSON.stringify({ cluster, ...map.toJSON() })}\n`
            : `created cluster ${cluster}: ${map.describe()}\n`,
        );
        return EXIT_OK;
      }
      case 'status': {
        if (values.shards !== undefined) throw new UsageError('--shards is for create');
        const state = await readClusterState(etcd, cluster);
        const { text, healthy } = statusText(state);
        process.stdout.write(json ? `${JSON.stringify({ cluster, healthy, shards: state.shards })}\n` : text);
        return healthy ? EXIT_OK : EXIT_PROBLEMS;
      }
      case 'failover': {
        if (values.shards !== undefined) throw new UsageError('--shards is for create');
        const shard = values.shard as string | undefined;
        if (shard === undefined)
          throw new UsageError('failover needs --shard ID (kv-cluster status lists them)');
        const to = values.to as string | undefined;
        const timeoutMs = integerOption(
          'timeout-ms',
          values['timeout-ms'] as string | undefined,
          DEFAULT_SWITCHOVER_TIMEOUT_MS,
        );
        if (timeoutMs < MIN_SWITCHOVER_TIMEOUT_MS || timeoutMs > MAX_SWITCHOVER_TIMEOUT_MS)
          throw new UsageError(
            `--timeout-ms must be ${MIN_SWITCHOVER_TIMEOUT_MS}..${MAX_SWITCHOVER_TIMEOUT_MS}, got ${timeoutMs}`,
          );
        try {
          checkName('--shard', shard);
          if (to !== undefined) checkName('--to', to);
        } catch (err) {
          throw new UsageError((err as Error).message);
        }
        const r = await runSwitchover(etcd, cluster, shard, to, timeoutMs);
        if (!r.ok) {
          if (json) process.stdout.write(`${JSON.stringify(r)}\n`);
          process.stderr.write(`kv-cluster: ${r.message}\n`);
          return EXIT_PROBLEMS;
        }
        process.stdout.write(
          json
            ? `${JSON.stringify(r)}\n`
            : `shard ${shard}: ${r.to.node} (${r.to.host}:${r.to.port}) is the primary in epoch ${r.to.epoch}, ` +
                `${r.from.node} (${r.from.host}:${r.from.port}, epoch ${r.from.epoch}) follows it; switchover took ${r.ms} ms\n`,
        );
        return EXIT_OK;
      }
      default:
        throw new UsageError(
          `unknown command ${JSON.stringify(command)}; kv-cluster knows create, status and failover`,
        );
    }
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 'INVALID_ARGUMENT') {
      process.stderr.write(`kv-cluster: ${(err as Error).message}\n`);
      return EXIT_PROBLEMS;
    }
    if (err instanceof UsageError) throw err;
    process.stderr.write(`kv-cluster: cannot reach etcd at ${hosts.join(',')}: ${(err as Error).message}\n`);
    return EXIT_PROBLEMS;
  } finally {
    etcd.close();
  }
}

runTool('kv-cluster', main);
