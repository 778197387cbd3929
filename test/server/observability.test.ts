/** INFO counters, the Prometheus endpoint, the slow-command log and the log formats of a real kv-server. */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { KvClient } from '../../src/index.js';
import { COMMAND_NAMES } from '../../src/protocol/messages.js';
import { METRIC_NAMES } from '../../src/server/metrics-http.js';
import { MAIN, spawnServer, tempDir } from './spawn.js';

async function scrape(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  expect(res.status).toBe(200);
  return res.text();
}

/** The value of one sample line `name{labels} value`. */
function sample(text: string, line: string): number {
  const m = text.split('\n').find((l) => l.startsWith(`${line} `));
  if (m === undefined) throw new Error(`no sample ${line}`);
  return Number(m.slice(line.length + 1));
}

describe('observability', () => {
  it('INFO stats and the metrics endpoint count the same requests; slow commands are logged without values', async () => {
    const s = await spawnServer({ args: ['--metrics-port', '0', '--slowlog-threshold-ms', '0'] });
    try {
      const metricsPort = Number(/"metricsPort":(\d+)/.exec(s.stderr())?.[1]);
      expect(metricsPort).toBeGreaterThan(0);
      const kv = new KvClient({ port: s.port, reconnect: false });
      await kv.set('k1', 'secret-value-1');
      await kv.mset({ a: 'secret-value-2', b: 'x' });
      expect(await kv.get('k1')).toBe('secret-value-1');
      await kv.mget(['a', 'b', 'c']);
      const info = (await kv.info('stats')).stats as Record<string, unknown>;
      const commands = info.commands as Record<string, number>;
      expect(Object.keys(commands)).toEqual([...COMMAND_NAMES]);
      expect(commands).toMatchObject({ SET: 1, MSET: 1, GET: 1, MGET: 1, INFO: 1 });
      expect(info.bytesIn as number).toBeGreaterThan(40);
      expect(info.bytesOut as number).toBeGreaterThan(20);
      expect(info.slowCommands as number).toBeGreaterThanOrEqual(4);
      expect(info.slowlogThresholdMs).toBe(0);
      const all = await kv.info();
      expect(Object.keys(all)).toContain('stats');
      const clients = all.clients as Record<string, number>;
      expect(clients.connected).toBe(1);
      await kv.close();

      const text = await scrape(metricsPort);
      for (const name of METRIC_NAMES) expect(text, name).toContain(`# TYPE ${name} `);
      expect(sample(text, 'segkv_commands_total{command="SET"}')).toBe(1);
      expect(sample(text, 'segkv_commands_total{command="MGET"}')).toBe(1);
      expect(sample(text, 'segkv_command_duration_seconds_count{command="SET"}')).toBe(1);
      expect(sample(text, 'segkv_keys')).toBe(3);
      expect(sample(text, 'segkv_connections_total')).toBeGreaterThanOrEqual(1);
      expect(sample(text, 'segkv_network_received_bytes_total')).toBeGreaterThan(40);
      expect(text).toContain('process_cpu_seconds_total');
      // Scraping twice does not double the totals.
      expect(sample(await scrape(metricsPort), 'segkv_commands_total{command="SET"}')).toBe(1);
      expect((await fetch(`http://127.0.0.1:${metricsPort}/nope`)).status).toBe(404);

      const slow = s
        .stderr()
        .split('\n')
        .filter((l) => l.includes('"msg":"slow command"'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(slow.find((l) => l.command === 'MSET')).toMatchObject({ keys: 2, level: 40 });
      expect(slow.find((l) => l.command === 'MGET')).toMatchObject({ keys: 3 });
      for (const l of slow) expect(typeof l.ms).toBe('number');
      expect(s.stderr()).not.toContain('secret-value');
    } finally {
      await s.stop();
    }
  });

  it('without --metrics-port or --slowlog-threshold-ms nothing is timed and no metrics port opens', async () => {
    const s = await spawnServer();
    try {
      const kv = new KvClient({ port: s.port, reconnect: false });
      await kv.set('k', 'v');
      const info = (await kv.info('stats')).stats as Record<string, unknown>;
      expect(info).toMatchObject({ slowCommands: 0, slowlogThresholdMs: null });
      await kv.close();
      expect(s.stderr()).not.toContain('metricsPort');
    } finally {
      await s.stop();
    }
  });

  it('--log-format pretty writes readable lines, not JSON', async () => {
    const proc = spawn(
      process.execPath,
      [MAIN, '--dir', tempDir(), '--port', '0', '--log-format', 'pretty'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let err = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no listening line:\n${err}`)), 15_000);
      proc.stderr!.on('data', (b: Buffer) => {
        err += b.toString();
        if (/listening/.test(err)) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    proc.kill('SIGTERM');
    await new Promise((r) => proc.on('exit', r));
    const line = err.split('\n').find((l) => l.includes('listening'))!;
    expect(line).toMatch(/INFO/);
    expect(line.trim().startsWith('{')).toBe(false);
  });
});
