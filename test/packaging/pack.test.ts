/**
 * The package as users get it: `npm pack` (of the dist/ that `npm test`'s
 * pretest just built; prepack rebuilds it when packing for real, skipped here
 * with --ignore-scripts so the test does not rewrite dist/ under the other
 * tests' feet), installed into an empty directory with `npm install`, then
 * its bins and its SDK used from there. The dependencies come from the npm
 * cache when it has them (--prefer-offline).
 */
import { execFile as execFileCb, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const execFile = promisify(execFileCb);
const root = resolve(import.meta.dirname, '../..');
const work = mkdtempSync(join(tmpdir(), 'segkv-pack-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface PackageJson {
  name: string;
  bin: Record<string, string>;
  types: string;
  exports: Record<string, string | { types: string; default: string }>;
}

async function run(cmd: string, args: string[], cwd: string, timeout = 60_000) {
  return execFile(cmd, args, {
    cwd,
    timeout,
    encoding: 'utf8',
    env: { ...process.env, npm_config_update_notifier: 'false' },
  });
}

describe('npm pack → npm install → use', () => {
  // 150 s: quiet it takes ~15 s, but npm pack + install timed out at 60 s under load 16.
  it('installs from the tarball; kv-server, kv-cli, kv-check and the SDK work there', {
    timeout: 150_000,
  }, async () => {
    const packed = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], root);
    const [info] = JSON.parse(packed.stdout) as [{ filename: string; files: { path: string }[] }];
    const inTarball = new Set(info.files.map((f) => f.path));
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as PackageJson;
    for (const bin of Object.values(pkg.bin)) expect(inTarball, bin).toContain(bin.replace(/^\.\//, ''));
    expect([...inTarball].some((p) => p.startsWith('dist/test/'))).toBe(false);
    // package.json says MIT; the tarball carries the licence text it refers to.
    expect(inTarball).toContain('LICENSE');
    expect(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).license).toBe('MIT');
    expect(readFileSync(join(root, 'LICENSE'), 'utf8')).toMatch(/^MIT License\n/);

    const app = join(work, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    await run(
      'npm',
      ['install', '--no-audit', '--no-fund', '--prefer-offline', join(work, info.filename)],
      app,
      90_000,
    );
    const installed = join(app, 'node_modules', 'segkv');

    // exports and types resolve to files that exist.
    expect(existsSync(join(installed, pkg.types))).toBe(true);
    for (const [sub, target] of Object.entries(pkg.exports)) {
      const files = typeof target === 'string' ? [target] : [target.types, target.default];
      for (const f of files) expect(existsSync(join(installed, f)), `${sub} → ${f}`).toBe(true);
    }

    // The types resolve through "exports" for a TypeScript user (NodeNext), and type-check.
    writeFileSync(
      join(app, 'check.ts'),
      [
        "import { connect, type KvClient, KvError } from 'segkv';",
        "import { openStore, type KvStore } from 'segkv/engine';",
        'const c: KvClient<string> = await connect({ port: 1, reconnect: false, lazyConnect: true });',
        "const n: number = await c.del('k', 'l');",
        "const store: KvStore = await openStore('data');",
        '// @ts-expect-error the Store internals are not in the published types',
        'store.sealActive();',
        'void n; void KvError;',
      ].join('\n'),
    );
    await run(
      process.execPath,
      [
        join(root, 'node_modules/typescript/bin/tsc'),
        ...['--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext'],
        ...['--target', 'es2022', '--skipLibCheck', '--typeRoots', join(root, 'node_modules/@types')],
        ...['--types', 'node', 'check.ts'],
      ],
      app,
      30_000,
    );

    const help = await run('npx', ['--no', '--', 'kv-server', '--help'], app);
    expect(help.stdout).toContain('--metrics-port');
    // --version reads the installed package.json.
    const version = await run(join(app, 'node_modules/.bin/kv-server'), ['--version'], app, 15_000);
    expect(version.stdout).toBe(
      `kv-server ${JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version}\n`,
    );

    // Every bin loads its modules (a dependency left in devDependencies would fail here).
    for (const bin of Object.keys(pkg.bin)) {
      const r = await run(join(app, 'node_modules/.bin', bin), ['--help'], app, 15_000);
      expect(r.stdout, bin).toMatch(/usage/i);
    }

    const dataDir = join(work, 'data');
    const server = spawn(
      join(app, 'node_modules/.bin/kv-server'),
      ['--dir', dataDir, '--port', '0', '--log-format', 'json'],
      {
        cwd: app,
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    try {
      let err = '';
      const port = await new Promise<number>((resolvePort, reject) => {
        const timer = setTimeout(() => reject(new Error(`kv-server did not listen:\n${err}`)), 15_000);
        server.stderr!.on('data', (b: Buffer) => {
          err += b.toString();
          const m = /"port":(\d+)[^\n]*"msg":"listening"/.exec(err);
          if (m) {
            clearTimeout(timer);
            resolvePort(Number(m[1]));
          }
        });
        server.on('exit', (code) => reject(new Error(`kv-server exited with ${code}:\n${err}`)));
      });

      writeFileSync(
        join(app, 'use.mjs'),
        [
          "import { connect } from 'segkv';",
          "import { createRequire } from 'node:module';",
          "const version = createRequire(import.meta.url)('segkv/package.json').version;",
          'const kv = await connect({ port: Number(process.argv[2]) });',
          "await kv.set('greeting', 'hello from the tarball');",
          "console.log(version, await kv.get('greeting'));",
          'await kv.close();',
        ].join('\n'),
      );
      const used = await run(process.execPath, ['use.mjs', String(port)], app, 15_000);
      expect(used.stdout.trim()).toBe(
        `${JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version} hello from the tarball`,
      );

      const ping = await run(
        join(app, 'node_modules/.bin/kv-cli'),
        ['-p', String(port), 'ping'],
        app,
        15_000,
      );
      expect(ping.stdout.trim()).toBe('PONG');
    } finally {
      server.kill('SIGTERM');
      await new Promise((r) => (server.exitCode !== null ? r(null) : server.on('exit', r)));
    }
    const check = await run(join(app, 'node_modules/.bin/kv-check'), [dataDir], app, 15_000);
    expect(check.stdout).toMatch(/ok|clean|no problems/i);
  });
});
