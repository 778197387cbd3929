/** The examples in examples/ run as documented (compiled to dist/examples by the main tsconfig). */
import { execFile as execFileCb } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { spawnServer, tempDir } from '../server/spawn.js';

const execFile = promisify(execFileCb);
const dist = resolve(import.meta.dirname, '../../dist/examples');

describe('examples', () => {
  it('embedded.ts opens a store, writes, batches, scans and closes', async () => {
    const { stdout } = await execFile(process.execPath, [resolve(dist, 'embedded.js'), tempDir()], {
      timeout: 15_000,
    });
    expect(stdout).toContain('user:1 = Ada');
    expect(stdout).toContain('users: user:1, user:3');
    expect(stdout).toMatch(/keys=3 segments=1/);
  });

  it('sdk.ts talks to a running kv-server', async () => {
    const server = await spawnServer();
    try {
      const { stdout } = await execFile(process.execPath, [resolve(dist, 'sdk.js'), String(server.port)], {
        timeout: 15_000,
      });
      expect(stdout).toContain('user:1 = Ada');
      expect(stdout).toContain('mget = ["Ada","Grace",null]');
      expect(stdout).toContain('keys = user:1, user:2');
      expect(stdout).toContain('ping = PONG');
    } finally {
      await server.stop();
    }
  });
});
