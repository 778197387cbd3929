/**
 * Shared helpers of the compaction tests: a Map model with expiry, checks of
 * a store against it, a recount of the log by offset (readFrom) that must
 * agree with the store's own figures (no segment counted twice or not at
 * all), and a look for leftover temporary files.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { expect } from 'vitest';
import type { Clock, Store } from '../../../src/engine/index.js';
import { RECORD_HEADER_BYTES } from '../../../src/engine/record.js';

export interface Entry {
  value: Buffer;
  /** ms since epoch, 0 = never. */
  expiresAt: number;
}

/** The expected state: key → latest value and expiry. */
export class Model {
  readonly map = new Map<string, Entry>();
  constructor(readonly clock: Clock) {}

  live(k: string): Entry | undefined {
    const e = this.map.get(k);
    if (e && e.expiresAt !== 0 && e.expiresAt <= this.clock.now()) return undefined;
    return e;
  }

  set(k: string, v: string | Buffer, ttlMs?: number): void {
    this.map.set(k, {
      value: Buffer.isBuffer(v) ? v : Buffer.from(v, 'utf8'),
      expiresAt: ttlMs ? this.clock.now() + ttlMs : 0,
    });
  }

  delete(k: string): void {
    this.map.delete(k);
  }

  liveKeys(): string[] {
    return [...this.map.keys()].filter((k) => this.live(k) !== undefined);
  }

  liveBytes(): number {
    let n = 0;
    for (const k of this.liveKeys())
      n += RECORD_HEADER_BYTES + Buffer.byteLength(k) + this.live(k)!.value.length;
    return n;
  }
}

/**
 * Every key of `universe` reads as the model says (deleted and expired keys
 * absent); then, every key having been touched (so expired ones left the
 * keydir), the key count and live bytes agree.
 */
export function expectModel(store: Store, model: Model, universe: Iterable<string>, ctx: string): void {
  for (const k of universe) {
    const want = model.live(k);
    const got = store.getSync(k);
    if (want === undefined) {
      if (got !== undefined)
        expect.fail(`${ctx}: key ${k} should be absent, reads ${got.toString().slice(0, 40)}`);
    } else if (got === undefined || !got.equals(want.value)) {
      expect.fail(
        `${ctx}: key ${k} should be ${want.value.toString().slice(0, 40)} (${want.value.length} B), reads ${
          got === undefined ? 'nothing' : `${got.toString().slice(0, 40)} (${got.length} B)`
        }`,
      );
    }
  }
  const stats = store.stats();
  expect(stats.keys, `${ctx}: stats.keys`).toBe(model.liveKeys().length);
  expect(stats.liveBytes, `${ctx}: stats.liveBytes`).toBe(model.liveBytes());
}

/**
 * Replays the whole log through readFrom(0): offsets strictly increase (no
 * record yielded twice, no segment counted twice), and the keys and live
 * bytes it implies equal the store's figures. Call with every key touched
 * (expectModel does) so that expired keys have left the keydir.
 */
export async function expectRecount(store: Store, now: number, ctx: string): Promise<void> {
  let last = -1;
  const latest = new Map<string, { bytes: number; gone: boolean }>();
  for await (const r of store.readFrom(0)) {
    if (r.offset <= last) expect.fail(`${ctx}: readFrom yielded offset ${r.offset} after ${last}`);
    last = r.offset;
    const gone = r.tombstone || (r.expiresAt !== 0 && r.expiresAt <= now);
    latest.set(r.key.toString('latin1'), {
      bytes: RECORD_HEADER_BYTES + r.key.length + r.value.length,
      gone,
    });
  }
  let keys = 0;
  let bytes = 0;
  for (const e of latest.values()) {
    if (e.gone) continue;
    keys++;
    bytes += e.bytes;
  }
  const stats = store.stats();
  expect(stats.keys, `${ctx}: stats.keys vs a recount of the log`).toBe(keys);
  expect(stats.liveBytes, `${ctx}: stats.liveBytes vs a recount of the log`).toBe(bytes);
  let segLive = 0;
  for (const s of stats.segments) segLive += s.liveBytes;
  expect(segLive, `${ctx}: per-segment live bytes add up`).toBe(bytes);
}

/** Files a finished or recovered compaction must not leave behind. */
export function leftovers(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((n) => n.endsWith('.compacting') || n.endsWith('.tmp') || n === 'COMPACTION');
}

/** Files of `dir` this process holds open though they were deleted. */
export function deletedButOpen(dir: string): string[] {
  const out: string[] = [];
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      const target = fs.readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(dir) && target.endsWith('(deleted)')) out.push(target);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

export function dirFiles(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((n) => n !== 'LOCK')
    .sort();
}

export function sizeOf(dir: string, filter: (name: string) => boolean): number {
  let n = 0;
  for (const name of fs.readdirSync(dir)) if (filter(name)) n += fs.statSync(`${dir}/${name}`).size;
  return n;
}

/** Resolves once `cond()` holds, polling every few ms; rejects after `ms`. */
export async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const shmDirs: string[] = [];

/**
 * A fresh directory on tmpfs when there is one (fsync is free there, so the
 * property tests run many more cases in their time budget); else in the OS
 * temp dir. SIGKILL tests do not need a disk: the page cache survives them.
 */
export function fastTempDir(): string {
  const base = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
  const d = fs.mkdtempSync(`${base}/segkv-`);
  shmDirs.push(d);
  return d;
}

export function removeFastTempDirs(): void {
  for (const d of shmDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
}

export const tick = () => new Promise<void>((r) => setImmediate(r));
