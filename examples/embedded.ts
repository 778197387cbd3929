/**
 * Embedded use: the engine in your own process, no server.
 *
 *   node dist/examples/embedded.js [DIR]      (default: a fresh temporary directory)
 *
 * In an installed package, import from 'segkv' instead of '../src/index.js'.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../src/index.js';

const dir = process.argv[2] ?? mkdtempSync(join(tmpdir(), 'segkv-embedded-'));
const store = await openStore(dir, { fsync: 'always' }); // acknowledged = on disk

await store.set('user:1', 'Ada');
await store.set('user:2', 'Grace');
await store.set('session:9', 'token', { ttlMs: 60_000 });
// Atomic batch: after a crash, all of it or none of it.
await store.batch([
  { type: 'set', key: 'user:3', value: 'Edsger' },
  { type: 'del', key: 'user:2' },
]);

console.log('user:1 =', store.getSync('user:1')?.toString()); // one pread, or a cache hit
console.log('users:', store.scan({ prefix: 'user:' }).keys.join(', '));
const s = store.stats();
console.log(`keys=${s.keys} segments=${s.segments.length} liveBytes=${s.liveBytes} deadBytes=${s.deadBytes}`);
await store.close(); // syncs and releases the directory lock
