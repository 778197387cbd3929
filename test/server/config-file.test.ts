/** kv-server's config file (--config / SEGKV_CONFIG): precedence, validation, --print-config. */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  effectiveConfig,
  REDACTED,
  readConfigFile,
  resolveCommandLine,
  SETTINGS,
  type ServerConfig,
} from '../../src/server/config.js';
import { MAIN, tempDir } from './spawn.js';

function files(map: Record<string, unknown>): (path: string) => string {
  return (path) => {
    if (!(path in map)) throw new Error(`ENOENT: no such file '${path}'`);
    const v = map[path];
    return typeof v === 'string' ? v : JSON.stringify(v);
  };
}

function serve(argv: string[], env: Record<string, string>, read: (p: string) => string): ServerConfig {
  const line = resolveCommandLine(argv, env, read);
  if (line.action === 'help' || line.action === 'version') throw new Error(`unexpected ${line.action}`);
  return line.config;
}

describe('config file', () => {
  const read = files({
    'a.json': { port: 8001, fsync: 'never', maxClients: 7, compaction: { minDeadRatio: 0.2, auto: false } },
  });

  it('flag > env > file > default, per setting and per compaction option', () => {
    const c = serve(
      ['--config', 'a.json', '--port', '9001', '--compaction-auto', 'true'],
      { SEGKV_FSYNC: 'always' },
      read,
    );
    expect(c).toMatchObject({ port: 9001, fsync: 'always', maxClients: 7, host: '127.0.0.1' });
    expect(c.compaction).toEqual({ minDeadRatio: 0.2, auto: true });
    // SEGKV_CONFIG names the file when --config is absent.
    expect(serve([], { SEGKV_CONFIG: 'a.json' }, read)).toMatchObject({ port: 8001, fsync: 'never' });
    // --config beats SEGKV_CONFIG.
    const both = files({ 'a.json': { port: 1 }, 'b.json': { port: 2 } });
    expect(serve(['--config', 'b.json'], { SEGKV_CONFIG: 'a.json' }, both).port).toBe(2);
  });

  it('bad files are refused with a message naming the field', () => {
    const cases: [unknown, RegExp][] = [
      [{ prot: 1 }, /c\.json: unknown field 'prot'\. Did you mean port\? Known fields: dir, host, port/],
      [{ color: 1 }, /c\.json: unknown field 'color'\. Known fields: dir/],
      [{ port: 'x' }, /c\.json: field 'port' must be a number, got "x"/],
      [{ port: 70000 }, /c\.json: field 'port' must be an integer from 0 to 65535, got 70000/],
      [{ fsync: 'often' }, /c\.json: field 'fsync' must be always, interval or never, got "often"/],
      [{ logFormat: 'xml' }, /field 'logFormat' must be one of json, pretty/],
      [
        { compaction: { minDeadRatoi: 1 } },
        /unknown field 'compaction\.minDeadRatoi'\. Did you mean minDeadRatio\? Known: auto, minDeadRatio/,
      ],
      [{ compaction: { auto: 'yes' } }, /field 'compaction\.auto' must be true or false, got "yes"/],
      [{ compaction: { auto: 1 } }, /field 'compaction\.auto' must be true or false, got 1/],
      [{ compaction: { minDeadRatio: true } }, /field 'compaction\.minDeadRatio' must be a number/],
      [{ compaction: { minDeadRatio: 2 } }, /field 'compaction\.minDeadRatio' must be in \(0, 1\], got 2/],
      [{ compaction: { checkIntervalMs: 1.5 } }, /'compaction\.checkIntervalMs' must be an integer from 10/],
      [{ compaction: 3 }, /field 'compaction' must be an object/],
      [[1, 2], /must hold one JSON object/],
      ['{"port": 1,', /c\.json is not valid JSON/],
    ];
    for (const [content, message] of cases) {
      const r = files({ 'c.json': content });
      expect(() => readConfigFile('c.json', r), JSON.stringify(content)).toThrow(message);
      expect(() => readConfigFile('c.json', r)).toThrow(ConfigError);
    }
    expect(() => serve(['--config', 'missing.json'], {}, files({}))).toThrow(
      /cannot read the config file missing\.json/,
    );
  });

  it('--print-config output is a valid config file that resolves to the same settings', () => {
    const c = serve(['--config', 'a.json', '--password', 'hunter2'], {}, read);
    const printed = effectiveConfig(c);
    expect(printed.password).toBe(REDACTED);
    for (const s of SETTINGS) expect(printed, s.key).toHaveProperty(s.key);
    // The redacted placeholder is refused rather than taken as the password.
    expect(() => serve(['--config', 'p.json'], {}, files({ 'p.json': printed }))).toThrow(
      /field 'password' is the <redacted> placeholder/,
    );
    const again = serve(['--config', 'p.json'], {}, files({ 'p.json': { ...printed, password: null } }));
    expect({ ...again, password: 'hunter2', compaction: c.compaction }).toEqual(c);
    expect(again.compaction).toMatchObject({
      minDeadRatio: 0.2,
      auto: false,
      minDeadBytes: 16 * 1024 * 1024,
    });
  });

  it('kv-server --print-config prints the effective settings, password redacted, and exits 0', () => {
    const dir = tempDir();
    const file = join(dir, 'segkv.json');
    writeFileSync(file, JSON.stringify({ port: 7500, cacheBytes: 0 }));
    const r = spawnSync(process.execPath, [MAIN, '--print-config', '--fsync', 'always'], {
      encoding: 'utf8',
      env: { ...process.env, SEGKV_CONFIG: file, SEGKV_PASSWORD: 'secret-pw' },
      timeout: 10_000,
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).not.toContain('secret-pw');
    const printed = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(printed).toMatchObject({ port: 7500, cacheBytes: 0, fsync: 'always', password: REDACTED });
    const bad = spawnSync(process.execPath, [MAIN, '--config', join(dir, 'nope.json')], {
      encoding: 'utf8',
      timeout: 10_000,
    });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('kv-server: cannot read the config file');
  });
});
