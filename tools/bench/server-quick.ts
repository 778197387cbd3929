/**
 * A quick local throughput figure for kv-server over the wire: spawns a
 * server (fresh temporary directory, `--fsync interval` unless told) and
 * drives it with C SDK clients, each keeping P requests in flight, first SET
 * then GET of V-byte values over K keys, for S seconds each.
 *
 *   node dist/tools/bench/server-quick.js [--clients 50] [--pipeline 16]
 *     [--value-bytes 100] [--keys 10000] [--seconds 3] [--fsync interval] [--ops set,get] [--raw]
 *
 * `--raw` drives the server with minimal hand-rolled protocol clients instead
 * of the SDK: the server's own capacity when the load generator is cheap.
 *
 * Not the comparative benchmark (kv-bench, against redis): a smoke figure for
 * whoever changes the network path.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { KvClient } from '../../src/index.js';
import { FrameReader } from '../../src/protocol/frame.js';
import { FrameWriter } from '../../src/protocol/frame-writer.js';
import { intOption, UsageError } from './lib.js';

const writer = new FrameWriter();

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '50' },
    pipeline: { type: 'string', default: '16' },
    'value-bytes': { type: 'string', default: '100' },
    keys: { type: 'string', default: '10000' },
    seconds: { type: 'string', default: '3' },
    fsync: { type: 'string', default: 'interval' },
    ops: { type: 'string', default: 'set,get' },
    raw: { type: 'boolean', default: false },
  },
});
const clients = intOption('--clients', values.clients, 1);
const pipeline = intOption('--pipeline', values.pipeline, 1);
const valueBytes = intOption('--value-bytes', values['value-bytes'], 0);
const keyCount = intOption('--keys', values.keys, 1);
const seconds = intOption('--seconds', values.seconds, 1);
if (values.fsync !== 'interval' && values.fsync !== 'always' && values.fsync !== 'never')
  throw new UsageError(`--fsync takes interval, always or never, got ${values.fsync}`);
const ops = values.ops!.split(',');
for (const op of ops)
  if (op !== 'set' && op !== 'get') throw new UsageError(`--ops takes set and get, got ${op}`);

const main = resolve(import.meta.dirname, '../../src/server/main.js');
const dir = mkdtempSync(join(tmpdir(), 'segkv-quick-'));
// SEGKV_QUICK_NODE_ARGS: extra node flags for the server, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
const nodeArgs = (process.env.SEGKV_QUICK_NODE_ARGS ?? '').split(' ').filter(Boolean);
const proc = spawn(
  process.execPath,
  [...nodeArgs, main, '--dir', dir, '--port', '0', '--fsync', values.fsync!],
  {
    stdio: ['ignore', 'ignore', 'pipe'],
  },
);
const port = await new Promise<number>((res, rej) => {
  let err = '';
  proc.stderr.on('data', (b: Buffer) => {
    err += b;
    const m = /"port":(\d+)[^\n]*"msg":"listening"/.exec(err);
    if (m) res(Number(m[1]));
  });
  proc.on('exit', () => rej(new Error(err)));
});

const value = Buffer.alloc(valueBytes, 'x');
const keyOf = (k: number) => `key:${(k % keyCount).toString().padStart(8, '0')}`;

function report(name: string, done: number, t0: number): void {
  const s = (performance.now() - t0) / 1000;
  process.stdout.write(
    `${name}: ${Math.round(done / s).toLocaleString('en-US')} ops/s (${clients} ${values.raw ? 'raw' : 'SDK'} clients × pipeline ${pipeline}, ${valueBytes} B values)\n`,
  );
}

/** Raw mode: each connection writes `pipeline` frames at once and waits for as many replies. */
async function rawPhase(name: 'SET' | 'GET'): Promise<void> {
  let done = 0;
  const deadline = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(
    Array.from(
      { length: clients },
      (_, ci) =>
        new Promise<void>((resolve, reject) => {
          const socket = netConnect({ host: '127.0.0.1', port });
          socket.setNoDelay(true);
          const reader = new FrameReader(1 << 30);
          let k = ci * 7919;
          let owed = 0;
          const send = () => {
            for (let j = 0; j < pipeline; j++) {
              writer.frame(name === 'SET' ? [j, 'SET', keyOf(k++), value] : [j, 'GET', keyOf(k++)]);
            }
            owed = pipeline;
            for (const b of writer.take()) socket.write(b);
          };
          socket.on('connect', send);
          socket.on('error', reject);
          socket.on('data', (chunk: Buffer) => {
            reader.push(chunk);
            while (reader.next() !== undefined) owed--;
            if (owed > 0) return;
            done += pipeline;
            if (performance.now() < deadline) send();
            else {
              socket.destroy();
              resolve();
            }
          });
        }),
    ),
  );
  report(name, done, t0);
}

if (values.raw) {
  if (ops.includes('set')) await rawPhase('SET');
  if (ops.includes('get')) await rawPhase('GET');
} else {
  const conns: KvClient<Buffer>[] = [];
  for (let i = 0; i < clients; i++) conns.push(new KvClient<Buffer>({ port, valueEncoding: 'buffer' }));
  await Promise.all(conns.map((c) => c.ready()));
  const phase = async (name: string, op: (c: KvClient<Buffer>, key: string) => Promise<unknown>) => {
    let done = 0;
    const deadline = performance.now() + seconds * 1000;
    const t0 = performance.now();
    await Promise.all(
      conns.map(async (c, ci) => {
        let k = ci * 7919;
        while (performance.now() < deadline) {
          const batch: Promise<unknown>[] = [];
          for (let j = 0; j < pipeline; j++) batch.push(op(c, keyOf(k++)));
          await Promise.all(batch);
          done += pipeline;
        }
      }),
    );
    report(name, done, t0);
  };
  if (ops.includes('set')) await phase('SET', (c, k) => c.set(k, value));
  if (ops.includes('get')) await phase('GET', (c, k) => c.get(k));
  await Promise.all(conns.map((c) => c.close()));
}

proc.kill('SIGTERM');
await new Promise((r) => proc.on('exit', r));
rmSync(dir, { recursive: true, force: true });
