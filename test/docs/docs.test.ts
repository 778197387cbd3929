/**
 * The user docs stay true to the code: README's quick start and
 * configuration table against kv-server's settings and --help, the metric
 * names, PROTOCOL.md's INFO table against a real INFO reply, and
 * ARCHITECTURE.md's module map against src/server.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openStore } from '../../src/engine/store.js';
import { INFO_SECTIONS } from '../../src/protocol/messages.js';
import { envName, helpText, parseConfig, SETTINGS } from '../../src/server/config.js';
import { METRIC_NAMES } from '../../src/server/metrics-http.js';
import { inProcessServer } from '../server/in-process.js';
import { tempDir } from '../server/spawn.js';

const root = resolve(import.meta.dirname, '../..');
const read = (f: string) => readFileSync(resolve(root, f), 'utf8');
const readme = read('README.md');
const protocol = read('protocol/PROTOCOL.md');
const architecture = read('ARCHITECTURE.md');

/** README's configuration table rows, by flag. */
function configRows(): Map<string, string[]> {
  const rows = new Map<string, string[]>();
  for (const line of readme.split('\n')) {
    const m = /^\| `(--[a-z<>-]+)` +\|/.exec(line);
    if (m)
      rows.set(
        m[1]!,
        line.split('|').map((c) => c.trim()),
      );
  }
  return rows;
}

/** A markdown file's heading anchors, as GitHub makes them. */
function headings(markdown: string): Set<string> {
  return new Set(
    [...markdown.matchAll(/^#+ (.+)$/gm)].map((m) =>
      m[1]!
        .toLowerCase()
        .replace(/[^a-z0-9 -]/g, '')
        .replace(/ /g, '-'),
    ),
  );
}

describe('README', () => {
  it('quick start: the two commands at the top are what package.json and the defaults do', () => {
    const top = readme.slice(0, readme.indexOf('## Using it'));
    expect(top).toContain(
      'npm ci && npm start    # install, build, start kv-server on 127.0.0.1:7379 with data in ./data',
    );
    expect(top).toContain('npm ci && npm test     # install, build, lint and run the whole test suite');
    const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
    expect(pkg.scripts.start).toMatch(/npm run build.*&& node dist\/src\/server\/main\.js$/);
    expect(pkg.scripts.pretest).toBe('npm run build');
    expect(pkg.scripts.test).toMatch(/biome check \. && vitest run/);
    expect(parseConfig([], {})).toMatchObject({ host: '127.0.0.1', port: 7379, dir: './data' });
  });

  it.each(['README.md', 'BENCHMARKS.md'])(
    '%s links nothing outside the repository: every link is a file of the repository or a heading',
    (file) => {
      const text = read(file);
      const links = [...text.matchAll(/!?\[[^\]]*\]\(([^)\s]+)\)/g)].map((m) => m[1]!);
      expect(links.length).toBeGreaterThan(1);
      for (const link of links) {
        expect(link, 'no web links: the docs ship in the package and must hold without them').not.toMatch(
          /^[a-z]+:/i,
        );
        const [path = '', anchor] = link.split('#');
        const target = resolve(root, path === '' ? file : path);
        expect(target.startsWith(`${root}/`), `${link} stays inside the repository`).toBe(true);
        expect(existsSync(target), `${link} exists`).toBe(true);
        if (anchor !== undefined && target.endsWith('.md'))
          expect(
            headings(readFileSync(target, 'utf8')).has(anchor),
            `#${anchor} is a heading of ${path || file}`,
          ).toBe(true);
      }
      // Nor names a path outside it in prose (`../shared/...`, absolute paths of one machine).
      expect(text).not.toMatch(/`\.\.\/|\]\(\.\.\/|`\/work\//);
    },
  );

  it('every flag of kv-server --help is in the configuration table, with its variable, field and default', () => {
    const rows = configRows();
    const helpFlags = [...helpText().matchAll(/^ {2}(--[a-z<>-]+)/gm)].map((m) => m[1]!);
    expect(helpFlags.length).toBeGreaterThan(SETTINGS.length);
    for (const flag of helpFlags) expect(rows.has(flag), `${flag} in README's table`).toBe(true);
    for (const s of SETTINGS) {
      const row = rows.get(`--${s.flag}`)!;
      expect(row[2], s.flag).toBe(`\`${envName(s.flag)}\``);
      expect(row[3], s.flag).toBe(`\`${s.key}\``);
      const def = row[4]!;
      if (s.fallback === undefined) expect(def, s.flag).toMatch(/^(none|off|auto)$/);
      else expect(def.startsWith(`\`${s.fallback}\``), `${s.flag} default ${s.fallback}: ${def}`).toBe(true);
    }
  });

  it('names every metric the endpoint serves', () => {
    for (const name of METRIC_NAMES) expect(readme, name).toContain(`\`${name}`);
  });
});

describe('PROTOCOL.md INFO', () => {
  it('documents every field of every section a server returns', async () => {
    const store = await openStore(tempDir(), { fsync: 'never' });
    try {
      const server = inProcessServer(store, { maxClients: 10, version: '0.0.0' });
      const info = server.info(INFO_SECTIONS);
      expect(Object.keys(info)).toEqual([...INFO_SECTIONS]);
      const section = protocol.slice(protocol.indexOf('### INFO\n'), protocol.indexOf('### COMPACT\n'));
      for (const name of INFO_SECTIONS) {
        const row = section.split('\n').find((l) => l.startsWith(`| \`${name}\``));
        expect(row, name).toBeDefined();
        const fields = info[name] as Record<string, unknown>;
        for (const [field, value] of Object.entries(fields)) {
          expect(row, `${name}.${field}`).toContain(`\`${field}\``);
          if (field === 'commands' || typeof value !== 'object' || value === null) continue;
          for (const sub of Object.keys(value))
            expect(row, `${name}.${field}.${sub}`).toContain(`\`${sub}\``);
        }
      }
      // compaction's progress, while a run is going, has these fields.
      for (const f of ['segmentsDone', 'segmentsTotal', 'bytesDone', 'bytesTotal'])
        expect(section).toContain(`\`${f}\``);
    } finally {
      await store.close();
    }
  });
});

describe('ARCHITECTURE.md', () => {
  it('maps every module of src/server and every example', () => {
    for (const f of readdirSync(resolve(root, 'src/server'))) expect(architecture, f).toContain(`    ${f} `);
    for (const f of readdirSync(resolve(root, 'examples'))) expect(architecture, f).toContain(f);
  });
});
