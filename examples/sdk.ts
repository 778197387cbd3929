/**
 * The client SDK against a running kv-server.
 *
 *   kv-server --port 7379 &
 *   node dist/examples/sdk.js [PORT]          (default 7379; SEGKV_PASSWORD is sent if set)
 *
 * In an installed package, import from 'segkv' instead of '../src/index.js'.
 */
import { connect, KvError } from '../src/index.js';

const port = Number(process.argv[2] ?? 7379);
const password = process.env.SEGKV_PASSWORD;
// Resolves once the server answered (HELLO, then AUTH); rejects with the reason otherwise
// (CONNECTION_FAILED: refused, TLS mismatch, not a segkv server; AUTH_FAILED).
const kv = await connect({ host: '127.0.0.1', port, ...(password !== undefined && { password }) });
kv.on('error', (err) => console.error('connection error:', err.message));

try {
  // Commands issued in the same tick travel in one write (pipelining).
  await Promise.all([kv.set('user:1', 'Ada'), kv.set('user:2', 'Grace'), kv.incr('visits')]);
  await kv.mset({ 'cfg:a': '1', 'cfg:b': '2' }); // atomic
  console.log('user:1 =', await kv.get('user:1'));
  console.log('mget =', JSON.stringify(await kv.mget('user:1', 'user:2', 'nope')));
  console.log('exists =', await kv.exists('user:1', 'nope'));
  await kv.set('session:9', 'token', { ex: 60 }); // or { ttlMs: 60_000 }, or 'EX', 60 as ioredis
  console.log('ttl =', await kv.ttl('session:9'), 's, pttl =', await kv.pttl('session:9'), 'ms');
  const keys: string[] = [];
  for await (const key of kv.keys('user:*')) keys.push(key); // a glob, as Redis's KEYS
  console.log('keys =', keys.join(', '));
  console.log('deleted =', await kv.del('user:2', 'session:9'));
  console.log('ping =', await kv.ping());
} catch (err) {
  // Errors carry the protocol's stable code (protocol/PROTOCOL.md §8).
  console.error(err instanceof KvError ? `${err.code}: ${err.message}` : err);
  process.exitCode = 1;
} finally {
  await kv.close();
}
