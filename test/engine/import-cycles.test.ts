/**
 * The engine's modules import each other without a cycle (ARCHITECTURE.md,
 * "The segment log"): the Store sits on the segment log, and compaction,
 * recovery, the sealer and the log's readers use the log's interfaces
 * (segment-log.ts, compaction/host.ts), never the Store. Type-only imports
 * count: a cycle through types still means no module can be read alone.
 *
 * A small walk of the relative imports of src/engine, then of all of src
 * (replica.ts reaches the server's replication state through ReplicaHost,
 * switchover-request.ts the member types through member-info.ts; no dependency);
 * `npx madge --circular --extensions ts src/` gives the same answer.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');

/** Every .ts file under `dir`, recursively. */
function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...tsFiles(p));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** The relative module specifiers of a source text: `import ... from`, `export ... from`, `import '...'`, `import(...)`. */
function importsOf(text: string): string[] {
  const specs: string[] = [];
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, ''); // comments name modules too
  const re = /(?:\bfrom\s*|\bimport\s*\(?\s*)['"](\.{1,2}\/[^'"]+)['"]/g;
  for (const m of code.matchAll(re)) specs.push(m[1]!);
  return specs;
}

/** The import graph of the files under `dir`: file → files it imports (`.js` specifiers name `.ts` files). */
function graphOf(dir: string): Map<string, string[]> {
  const files = tsFiles(dir);
  const known = new Set(files);
  const graph = new Map<string, string[]>();
  for (const f of files) {
    const edges: string[] = [];
    for (const spec of importsOf(readFileSync(f, 'utf8'))) {
      const target = resolve(dirname(f), spec.replace(/\.js$/, '.ts'));
      if (known.has(target)) edges.push(target);
    }
    graph.set(f, edges);
  }
  return graph;
}

/** One cycle per strongly connected component of more than one node (or a self-import), as a path. */
function cyclesOf(graph: Map<string, string[]>): string[][] {
  // Tarjan's algorithm.
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const components: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1 || (graph.get(v) ?? []).includes(v)) components.push(comp);
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  // A readable path for each: from the component's first node back to itself through the component.
  return components.map((comp) => {
    const inComp = new Set(comp);
    const start = comp.sort()[0]!;
    const path = [start];
    const seen = new Set([start]);
    let at = start;
    for (;;) {
      const next = (graph.get(at) ?? []).filter((w) => inComp.has(w));
      if (next.includes(start)) return [...path, start];
      const step = next.find((w) => !seen.has(w)) ?? next[0]!;
      if (seen.has(step)) return [...path, step];
      path.push(step);
      seen.add(step);
      at = step;
    }
  });
}

describe('engine import graph', () => {
  it('the cycle finder finds a cycle and its path (so the check below can fail)', () => {
    const g = new Map([
      ['store', ['log', 'compactor']],
      ['compactor', ['swap']],
      ['swap', ['store']],
      ['log', []],
    ]);
    expect(cyclesOf(g)).toEqual([['compactor', 'swap', 'store', 'compactor']]);
    g.set('swap', ['log']);
    expect(cyclesOf(g)).toEqual([]);
    expect(
      importsOf(
        "import type { A } from './a.js';\nexport { b } from '../b.js';\nimport './c.js';\nimport { x } from 'node:fs';\n/** not from './d.js' */\n// import './e.js';",
      ),
    ).toEqual(['./a.js', '../b.js', './c.js']);
  });

  it('src/engine has no import cycle, type-only imports included', () => {
    const dir = resolve(root, 'src/engine');
    const cycles = cyclesOf(graphOf(dir)).map((c) => c.map((f) => relative(dir, f)).join(' → '));
    expect(cycles).toEqual([]);
  });

  it('nor has the rest of src (replication, cluster, server, protocol, client)', () => {
    const dir = resolve(root, 'src');
    const cycles = cyclesOf(graphOf(dir)).map((c) => c.map((f) => relative(dir, f)).join(' → '));
    expect(cycles).toEqual([]);
  });

  it('the engine imports nothing from the layers above it (server, replication, cluster, protocol, client)', () => {
    const dir = resolve(root, 'src/engine');
    const allowed = new Set([resolve(root, 'src/errors.ts')]);
    for (const f of tsFiles(dir)) {
      for (const spec of importsOf(readFileSync(f, 'utf8'))) {
        const target = resolve(dirname(f), spec.replace(/\.js$/, '.ts'));
        if (!target.startsWith(dir + sep))
          expect(allowed, `${relative(root, f)} imports ${spec}`).toContain(target);
      }
    }
  });

  it('the log and the modules beneath the Store never import the Store', () => {
    const dir = resolve(root, 'src/engine');
    const store = resolve(dir, 'store.ts');
    const graph = graphOf(dir);
    const users = [
      'segment-log.ts',
      'recovery.ts',
      'sealer.ts',
      'log-reader.ts',
      'log-cursor.ts',
      'options.ts',
      'compaction/compactor.ts',
      'compaction/swap.ts',
      'compaction/reaper.ts',
      'compaction/rewrite-host.ts',
    ];
    for (const f of users) expect(graph.get(resolve(dir, f)), f).not.toContain(store);
  });
});
