/**
 * `kv-cli [options] CMD ARGS`: one command, its reply on stdout, exit 0; an
 * error reply or an unreachable server goes to stderr with exit 1. The
 * client does not reconnect: one attempt, as redis-cli. With -c a MOVED
 * reply is followed to the node it names (redirect.ts).
 */
import { EXIT_OK, EXIT_PROBLEMS, Output } from '../lib/cli.js';
import { runCommand } from './commands.js';
import { compactionWatcher } from './compact-progress.js';
import { ConnectionWatch, cannotConnect, openClient } from './connection.js';
import { helpText } from './help.js';
import type { CliOptions } from './options.js';
import { MAX_REDIRECTS, redirectOf } from './redirect.js';
import { bulk, formatHuman, type Reply, render, toJson } from './reply.js';

async function readStdin(): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of process.stdin) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

/** Keys asked per SCAN page by --scan. */
const NEWLINE = Buffer.from('\n');
const SCAN_PAGE_KEYS = 1000;

type ErrorReply = Extract<Reply, { type: 'error' }>;

function printError(r: ErrorReply, o: CliOptions): void {
  process.stderr.write(`${formatHuman(r)}\n`);
  if (o.output === 'json') process.stdout.write(render(r, 'json'));
}

export async function runOnce(o: CliOptions, version: string): Promise<number> {
  const args: Buffer[] = o.command.map((a) => Buffer.from(a, 'utf8'));
  if (o.lastArgFromStdin) args.push(await readStdin());
  const name = args[0]!.toString('utf8').toUpperCase();
  if (name === 'HELP') {
    process.stdout.write(helpText(args[1]?.toString('utf8'), version));
    return EXIT_OK;
  }
  if (name === 'AUTH') {
    const message = 'in one-shot mode pass the password with -a or the env variable SEGKV_CLI_AUTH';
    printError({ type: 'error', code: 'NOT_SUPPORTED', message }, o);
    return EXIT_PROBLEMS;
  }
  if (name === 'QUIT' || name === 'EXIT' || name === 'CLEAR') return EXIT_OK;

  let client = openClient(o, { reconnect: false });
  let watch = new ConnectionWatch(client);
  const watchCompaction = compactionWatcher(o, process.stderr);
  try {
    for (let i = 0; i < o.repeat; i++) {
      if (i > 0 && o.intervalMs > 0) await new Promise((r) => setTimeout(r, o.intervalMs));
      let reply = await runCommand({ client, ...(watchCompaction && { watchCompaction }) }, args);
      // -c: follow MOVED to the slot's node and stay there (silently, as redis-cli does outside its prompt).
      for (let hops = 0; o.cluster && hops < MAX_REDIRECTS; hops++) {
        const to = redirectOf(reply);
        if (to === undefined) break;
        await client.close();
        o.host = to.host;
        o.port = to.port;
        client = openClient(o, { reconnect: false });
        watch = new ConnectionWatch(client);
        reply = await runCommand({ client, ...(watchCompaction && { watchCompaction }) }, args);
      }
      if (reply.type === 'error') {
        if (
          reply.code === 'CONNECTION_FAILED' ||
          (!watch.everConnected && (reply.code === 'CONNECTION_CLOSED' || reply.code === 'CLOSED'))
        ) {
          process.stderr.write(`${cannotConnect(o, watch.lastError ?? reply.message)}\n`);
        } else printError(reply, o);
        return EXIT_PROBLEMS;
      }
      process.stdout.write(render(reply, o.output));
    }
  } finally {
    await client.close();
  }
  return EXIT_OK;
}

/**
 * `--scan [--pattern GLOB]`: every key, one per line, as its bytes (as
 * redis-cli --scan prints them); with --json a JSON string, or {"base64"}
 * for bytes that are not UTF-8.
 */
export async function runScan(o: CliOptions): Promise<number> {
  const client = openClient(o, { reconnect: false });
  const watch = new ConnectionWatch(client);
  const args = [Buffer.from('SCAN'), Buffer.from('0')];
  if (o.pattern !== undefined) args.push(Buffer.from('MATCH'), Buffer.from(o.pattern, 'utf8'));
  args.push(Buffer.from('COUNT'), Buffer.from(String(SCAN_PAGE_KEYS)));
  const out = new Output();
  try {
    for (;;) {
      const reply = await runCommand({ client }, args);
      if (reply.type === 'error') {
        if (
          reply.code === 'CONNECTION_FAILED' ||
          (!watch.everConnected && (reply.code === 'CONNECTION_CLOSED' || reply.code === 'CLOSED'))
        ) {
          process.stderr.write(`${cannotConnect(o, watch.lastError ?? reply.message)}\n`);
        } else printError(reply, o);
        return EXIT_PROBLEMS;
      }
      const page = (reply as { json: { cursor: string | null; keys: Buffer[] } }).json;
      for (const k of page.keys) {
        if (o.output === 'json') await out.write(`${JSON.stringify(toJson(bulk(k)))}\n`);
        else await out.write(Buffer.concat([k, NEWLINE]));
      }
      if (page.cursor === null) break;
      args[1] = Buffer.from(page.cursor);
    }
    await out.flush();
  } finally {
    await client.close();
  }
  return EXIT_OK;
}
