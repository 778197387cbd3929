/**
 * Hostile clients against a real kv-server (DESIGN.md §1.6, §5), the short
 * version of `npm run hostile` (tools/hostile.ts): protocol fuzzing with
 * fast-check and with random bytes, 1000 connections opened and dropped,
 * slowloris and silent connections (the idle timeout closes the silent
 * ones), a client pipelining GETs of 60 KiB without reading, oversized
 * frames before and after AUTH, and every command before AUTH — while a
 * well-behaved client keeps writing and reading. Nothing crashes, no
 * violation, the server's RSS stays under its bound, and every write the
 * well-behaved client had acknowledged reads back. test/server/bad-input
 * and backpressure cover single cases in more detail; this is the mix.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AttackResult, runHostile, startHostileServer, summaryTable } from '../../tools/hostile.js';
import { removeTempDirs, tempDir } from '../engine/helpers.js';
import { buildServer, cleanup } from './server-build.js';

let server: Awaited<ReturnType<typeof startHostileServer>>;
let exited = false;

beforeAll(async () => {
  server = await startHostileServer(buildServer(), tempDir());
  server.proc.on('exit', () => {
    exited = true;
  });
}, 60_000);

afterAll(() => {
  server?.proc.kill('SIGKILL');
  cleanup();
  removeTempDirs();
});

describe('hostile clients', () => {
  let results: AttackResult[];

  it('run every attack (quick budgets) with the server up throughout', async () => {
    results = await runHostile({
      port: server.port,
      pid: server.proc.pid!,
      quick: true,
      seed: 20261127,
      alive: () => !exited,
    });
    console.log(summaryTable(results));
    expect(exited).toBe(false);
  }, 60_000);

  it('no crash, no violation, acknowledged writes all read back', () => {
    for (const r of results) {
      expect(r.crashes, r.name).toBe(0);
      expect(r.violations, r.name).toEqual([]);
    }
    expect(results.at(-1)!.inputs).toBeGreaterThan(0);
  });

  it('every attack was actually tried', () => {
    const tried = Object.fromEntries(results.map((r) => [r.name, r.inputs]));
    // A time budget (3 s): ~9000 frames on a quiet machine, ~450 at load 12; either way it ran.
    expect(tried['fuzz frames (fast-check)']).toBeGreaterThan(100);
    expect(tried['connection churn']).toBe(1000);
    expect(tried['oversized frames']).toBe(40);
    expect(tried['commands before AUTH']).toBe(450);
  });
});
