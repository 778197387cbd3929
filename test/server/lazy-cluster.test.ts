/**
 * A standalone kv-server does not load the cluster's etcd client: etcd3 and
 * its gRPC stack cost ~25 MiB of RSS (issue 15's memory target), so
 * src/server/cluster-mode.ts imports them only when a node joins a cluster.
 * A real server process runs with a module hook (NODE_OPTIONS --import) that
 * logs every package it resolves; the log must show the packages a server
 * uses (so the hook works) and not etcd3.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { spawnServer, tempDir } from './spawn.js';

/** A RESP PING; resolves with the reply's bytes. */
function ping(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1', () => sock.write('*1\r\n$4\r\nPING\r\n'));
    sock.once('data', (d) => {
      sock.destroy();
      resolve(d.toString());
    });
    sock.once('error', reject);
  });
}

describe('a standalone server', () => {
  it('serves without loading etcd3', async () => {
    const hooks = tempDir();
    const log = join(hooks, 'packages.log');
    writeFileSync(log, '');
    writeFileSync(
      join(hooks, 'hooks.mjs'),
      `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  if (!/^(\\.|\\/|node:|file:|data:)/.test(specifier)) appendFileSync(${JSON.stringify(log)}, specifier + '\\n');
  return next(specifier, context);
}
`,
    );
    writeFileSync(
      join(hooks, 'register.mjs'),
      `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(join(hooks, 'hooks.mjs')).href)});\n`,
    );
    const srv = await spawnServer({
      env: { NODE_OPTIONS: `--import ${pathToFileURL(join(hooks, 'register.mjs')).href}` },
    });
    expect(await ping(srv.port)).toBe('+PONG\r\n'); // serving (and past installing its signal handlers)
    expect(await srv.stop()).toBe(0);
    const packages = new Set(readFileSync(log, 'utf8').split('\n').filter(Boolean));
    expect(packages).toContain('pino');
    expect(packages).toContain('msgpackr');
    expect(packages).not.toContain('etcd3');
  });
});
