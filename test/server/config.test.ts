/** kv-server settings (flags beat env beat defaults) and the process's start and stop behaviour. */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { KvClient } from '../../src/index.js';
import { ConfigError, envName, helpText, parseConfig, SETTINGS } from '../../src/server/config.js';
import { MAIN, spawnServer, tempDir } from './spawn.js';

describe('parseConfig', () => {
  it('defaults', () => {
    const c = parseConfig([], {});
    expect(c).toMatchObject({
      dir: './data',
      host: '127.0.0.1',
      port: 7379,
      fsync: 'interval',
      maxFrameBytes: 64 * 1024 * 1024,
      maxClients: 10_000,
      idleTimeoutMs: 0,
      logLevel: 'info',
      compaction: {},
    });
    expect(typeof c === 'object' && c.password).toBeUndefined();
  });

  it('flags beat env beat defaults', () => {
    const env = { SEGKV_PORT: '8000', SEGKV_FSYNC: 'always', SEGKV_MAX_CLIENTS: '5' };
    const c = parseConfig(['--port', '9000', '--dir=/x'], env);
    expect(c).toMatchObject({ port: 9000, fsync: 'always', maxClients: 5, dir: '/x' });
  });

  it('every setting has a flag and an env variable, listed by --help', () => {
    expect(parseConfig(['--help'], {})).toBe('help');
    const help = helpText();
    const sample = { int: '1234', fsync: 'never', level: 'warn', format: 'pretty', string: 'v' } as const;
    for (const s of SETTINGS) {
      expect(help).toContain(`--${s.flag}`);
      expect(help).toContain(envName(s.flag));
      const env: Record<string, string> = { [envName(s.flag)]: sample[s.kind] };
      if (s.key === 'tlsCert') env.SEGKV_TLS_KEY = 'k';
      if (s.key === 'tlsKey') env.SEGKV_TLS_CERT = 'c';
      const c = parseConfig([], env);
      if (typeof c !== 'object') throw new Error(`unexpected ${c}`);
      expect(String(c[s.key])).toBe(sample[s.kind]);
    }
    expect(help).toContain('--compaction-');
  });

  it('compaction flags pass through as store options', () => {
    const c = parseConfig(['--compaction-min-dead-ratio', '0.5', '--compaction-auto=false'], {
      SEGKV_COMPACTION_CHECK_INTERVAL_MS: '1000',
    });
    expect(typeof c === 'object' && c.compaction).toEqual({
      minDeadRatio: 0.5,
      auto: false,
      checkIntervalMs: 1000,
    });
  });

  it('bad values name the flag', () => {
    const bad: [string[], Record<string, string>, RegExp][] = [
      [['--port', '70000'], {}, /--port must be an integer from 0 to 65535/],
      [['--fsync', 'sometimes'], {}, /--fsync must be always, interval or never/],
      [[], { SEGKV_MAX_FRAME_BYTES: '12' }, /SEGKV_MAX_FRAME_BYTES must be an integer from 1024/],
      [['--nope'], {}, /Unknown option '--nope'/],
      [['--tls-cert', 'a.pem'], {}, /--tls-cert and --tls-key go together/],
      [['--log-level', 'loud'], {}, /--log-level must be one of/],
    ];
    for (const [argv, env, message] of bad) {
      expect(() => parseConfig(argv, env)).toThrow(ConfigError);
      expect(() => parseConfig(argv, env)).toThrow(message);
    }
  });
});

describe('kv-server process', () => {
  it('--help exits 0; a bad flag exits 2 with a clear message', () => {
    const help = spawnSync(process.execPath, [MAIN, '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('--max-frame-bytes');
    const bad = spawnSync(process.execPath, [MAIN, '--port', 'abc'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("kv-server: --port must be an integer from 0 to 65535, got 'abc'");
  });

  it("a bad compaction setting is refused with exit 2, naming the flag and the store's rule", () => {
    const dir = tempDir();
    const r = spawnSync(
      process.execPath,
      [MAIN, '--dir', dir, '--port', '0', '--compaction-min-dead-ratio', '7'],
      {
        encoding: 'utf8',
        timeout: 10_000,
      },
    );
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('kv-server: --compaction-min-dead-ratio must be in (0, 1], got 7\n');
  });

  it('a second server on the same directory fails at once', async () => {
    const first = await spawnServer();
    try {
      const second = spawnSync(process.execPath, [MAIN, '--dir', first.dir, '--port', '0'], {
        encoding: 'utf8',
        timeout: 10_000,
      });
      expect(second.status, second.stderr).toBe(1);
      expect(second.stderr).toMatch(/kv-server: cannot open .*lock|LOCK|locked/i);
    } finally {
      await first.stop();
    }
  });

  it('SIGTERM finishes in-flight requests, closes the store and exits 0', async () => {
    const s = await spawnServer({ args: ['--fsync', 'always'] });
    const c = new KvClient({ port: s.port, reconnect: false });
    c.on('error', () => {});
    await c.ready();
    const writes = Array.from({ length: 500 }, (_, i) => c.set(`k${i}`, 'v'));
    // Let the requests reach the server, then ask it to stop while they are in flight.
    await new Promise((r) => setTimeout(r, 5));
    const exit = s.stop('SIGTERM');
    const results = await Promise.allSettled(writes);
    expect(await exit).toBe(0);
    // Whatever the server had read before the signal was answered.
    const firstRejected = results.findIndex((r) => r.status === 'rejected');
    if (firstRejected >= 0)
      expect(results.slice(firstRejected).every((r) => r.status === 'rejected')).toBe(true);
    expect(s.stderr()).toContain('"msg":"store closed; bye"');
    await c.close();
  });

  it("a SIGTERM sent the moment the 'listening' line appears still shuts down cleanly", async () => {
    // The handlers used to go in just after that line: a signal in between met the default action.
    for (let i = 0; i < 5; i++) {
      const s = await spawnServer(); // resolves on the 'listening' line
      expect(await s.stop('SIGTERM')).toBe(0);
      expect(s.stderr()).toContain('"msg":"store closed; bye"');
    }
  });
});
