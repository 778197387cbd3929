/**
 * Crash test with real processes (DESIGN.md §1.1, §1.2, §1.5): a child writes
 * under fsync 'always' with 12 concurrent writers (sets, deletes, 5-key atomic
 * batches) and prints every acknowledged operation; the parent SIGKILLs it at
 * a random moment, many times, and after each kill reopens the directory and
 * checks that every acknowledged write is there with its latest acknowledged
 * value (or the one in flight at the kill), acknowledged deletes stay
 * deleted, no batch is half applied, nothing unknown appears, and the dead
 * child's LOCK does not block the reopen.
 *
 * SIGKILL keeps the page cache, so this proves the ack/recovery logic, not
 * fsync discipline (power-loss.test.ts covers that).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/engine/index.js';
import {
  buildEngine,
  FIXTURES,
  REPO,
  removeEngineBuilds,
  removeTempDirs,
  silentLogger,
  tempDir,
} from './helpers.js';

const WRITERS = 12;
const KEYS_PER_WRITER = 6;
const GROUPS_PER_WRITER = 2;
const MEMBERS = 5;

type Op =
  | { t: 'set'; k: string; v: string }
  | { t: 'del'; k: string }
  | { t: 'bset'; g: number; v: string }
  | { t: 'bdel'; g: number };
type State = Map<string, string | null>;

const plainKeys: string[] = [];
const groups: string[][] = [];
const groupOf = (w: number, g: number) => groups[w * GROUPS_PER_WRITER + g]!;
for (let w = 0; w < WRITERS; w++) {
  for (let j = 0; j < KEYS_PER_WRITER; j++) plainKeys.push(`w${w}/k${j}`);
  for (let g = 0; g < GROUPS_PER_WRITER; g++)
    groups.push(Array.from({ length: MEMBERS }, (_, i) => `w${w}/g${g}/m${i + 1}`));
}
const allKeys = [...plainKeys, ...groups.flat()];

/** The keys an operation of writer `w` writes, with the value each gets. */
function effects(w: number, op: Op): [string, string | null][] {
  switch (op.t) {
    case 'set':
      return [[op.k, op.v]];
    case 'del':
      return [[op.k, null]];
    case 'bset':
      return groupOf(w, op.g).map((k) => [k, op.v]);
    case 'bdel':
      return groupOf(w, op.g).map((k) => [k, null]);
  }
}

interface Run {
  lines: string[];
  ready: boolean;
  stderr: string;
  killedAfterMs: number;
}

function runChild(
  dir: string,
  cycle: number,
  killAfterReadyMs: number | null,
  killAfterSpawnMs: number,
  mode: string,
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [join(FIXTURES, 'crash-writer.mjs'), dir, String(cycle), String(cycle * 31 + 7), mode],
      { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SEGKV_ENGINE: engine } },
    );
    const t0 = Date.now();
    let out = '';
    let stderr = '';
    let ready = false;
    let timer: NodeJS.Timeout | undefined;
    const kill = () => child.kill('SIGKILL');
    if (killAfterReadyMs === null) timer = setTimeout(kill, killAfterSpawnMs);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      out += d;
      if (!ready && out.startsWith('R\n')) {
        ready = true;
        if (killAfterReadyMs !== null) timer = setTimeout(kill, killAfterReadyMs);
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (signal !== 'SIGKILL') {
        reject(new Error(`crash-writer exited on its own (code ${code}): ${stderr}`));
        return;
      }
      // A line cut by the kill has no newline: drop it.
      const lines = out.split('\n');
      lines.pop();
      resolve({ lines, ready, stderr, killedAfterMs: Date.now() - t0 });
    });
  });
}

/** Replays the child's output over `acked`; returns the in-flight operation of each writer. */
function replay(lines: string[], acked: State): Map<number, Op> {
  const pending = new Map<number, { seq: number; op: Op }>();
  for (const l of lines) {
    if (l === 'R' || l === 'C') continue;
    const [tag, wText, seqText, ...rest] = l.split(' ');
    const w = Number(wText);
    const seq = Number(seqText);
    if (tag === 'I') {
      expect(pending.has(w), `writer ${w} issued two operations at once`).toBe(false);
      pending.set(w, { seq, op: JSON.parse(rest.join(' ')) as Op });
    } else if (tag === 'A') {
      const p = pending.get(w);
      expect(p?.seq, `ack of an operation never issued: ${l}`).toBe(seq);
      for (const [k, v] of effects(w, p!.op)) acked.set(k, v);
      pending.delete(w);
    } else throw new Error(`unexpected line from the child: ${l}`);
  }
  return new Map([...pending].map(([w, p]) => [w, p.op]));
}

async function verify(dir: string, acked: State, inFlight: Map<number, Op>): Promise<State> {
  const s = await openStore(dir, { fsync: 'never', logger: silentLogger, compaction: { auto: false } });
  try {
    expect(s.stats().recovery.corruptions).toBe(0);
    const actual: State = new Map();
    for (const k of allKeys) actual.set(k, s.getSync(k)?.toString() ?? null);
    const allowed = (k: string): (string | null)[] => {
      const a = [acked.get(k) ?? null];
      for (const [w, op] of inFlight) for (const [ek, ev] of effects(w, op)) if (ek === k) a.push(ev);
      return a;
    };
    for (const k of plainKeys) {
      expect(
        allowed(k),
        `${k}: acked ${acked.get(k)}, in flight ${JSON.stringify(allowed(k).slice(1))}`,
      ).toContain(actual.get(k));
    }
    for (const members of groups) {
      const values = members.map((k) => actual.get(k));
      expect(
        new Set(values).size,
        `batch group ${members[0]} is half applied: ${JSON.stringify(values)}`,
      ).toBe(1);
      expect(allowed(members[0]!)).toContain(values[0]);
    }
    const known = new Set(allKeys);
    for await (const k of s.keys()) expect(known.has(k), `unknown key ${k}`).toBe(true);
    return actual;
  } finally {
    await s.close();
  }
}

let engine: string;
beforeAll(() => {
  engine = buildEngine();
});
afterAll(() => {
  removeTempDirs();
  removeEngineBuilds();
});

async function crashCycles(mode: string, cycles: number, budgetMs: number): Promise<{ compactions: number }> {
  const dir = tempDir();
  let state: State = new Map(allKeys.map((k) => [k, null]));
  let acks = 0;
  let caughtInFlight = 0;
  let lockTakeovers = 0;
  let compactions = 0;
  const t0 = Date.now();
  let cycle = 0;
  // Not vacuous: many acked operations, kills that caught operations in flight, stale
  // locks taken over, and in compact mode merges under the kills. A loaded machine
  // gets fewer of each per cycle: go on past the budget (up to three times the
  // cycles) until there are enough.
  const enough = () =>
    cycle >= 6 &&
    acks > 200 &&
    caughtInFlight > 0 &&
    lockTakeovers >= 4 &&
    (mode !== 'compact' || compactions >= 3);
  const more = () => !enough() && cycle < cycles * 3;
  for (; (cycle < cycles && Date.now() - t0 < budgetMs) || more(); cycle++) {
    // Mostly kill while writing; every fifth cycle, possibly during open/recovery.
    const duringOpen = cycle % 5 === 4;
    const run = await runChild(
      dir,
      cycle,
      duringOpen
        ? null
        : (mode === 'compact' ? 150 : 20) + Math.floor(Math.random() * (mode === 'compact' ? 500 : 300)),
      Math.floor(Math.random() * 250),
      mode,
    );
    if (!duringOpen) expect(run.ready, `the child never opened the store: ${run.stderr}`).toBe(true);
    if (run.ready) {
      // The dead child's lock is still there: the reopen must see it is stale and take it over.
      expect(fs.existsSync(join(dir, 'LOCK'))).toBe(true);
      lockTakeovers++;
    }
    const acked: State = new Map(state);
    const inFlight = replay(run.lines, acked);
    acks += run.lines.filter((l) => l.startsWith('A ')).length;
    compactions += run.lines.filter((l) => l === 'C').length;
    caughtInFlight += inFlight.size;
    try {
      state = await verify(dir, acked, inFlight);
    } catch (err) {
      throw new Error(
        `cycle ${cycle} (killed after ${run.killedAfterMs} ms): ${(err as Error).message}\n${run.stderr}`,
      );
    }
  }
  expect(cycle).toBeGreaterThanOrEqual(6);
  expect(acks).toBeGreaterThan(200);
  expect(caughtInFlight).toBeGreaterThan(0);
  expect(lockTakeovers).toBeGreaterThanOrEqual(4);
  return { compactions };
}

describe('SIGKILL during fsync=always writes', () => {
  it('keeps every acknowledged write and delete, applies batches whole, and takes over the stale lock', async () => {
    await crashCycles('plain', 18, 14_000);
  }, 120_000);
});

describe('SIGKILL during writes with compaction running all the time', () => {
  it('loses no acknowledged write to a merge killed at any moment, and resurrects no delete', async () => {
    const { compactions } = await crashCycles('compact', 12, 12_000);
    expect(compactions).toBeGreaterThanOrEqual(3);
  }, 120_000);
});
