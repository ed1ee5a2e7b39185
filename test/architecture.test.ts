/**
 * Dependencies point down the request's path (DESIGN.md "Layout"): no feature imports the
 * composition root, and no two folders of src/ import each other, directly or around a loop.
 * Type-only imports are left out: they are erased at build and load nothing.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, posix, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';

const SRC = resolve(import.meta.dirname, '../src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [join(dir, e.name)] : [],
  );
}

/** file (relative to src/, posix) -> the src/ files it loads at run time. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const statement = /(?:^|\n)\s*(import|export)\s+(type\s+)?([^'";]*?)\s*from\s*['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g;
  for (const file of sources(SRC)) {
    const from = relative(SRC, file).split('\\').join('/');
    const targets: string[] = [];
    for (const m of readFileSync(file, 'utf8').matchAll(statement)) {
      const typeOnly = m[2] !== undefined || (m[3] !== undefined && /^\{[^}]*\}$/.test(m[3].trim()) && m[3].replace(/[{}\s]/g, '').split(',').filter(Boolean).every((n) => n.startsWith('type')));
      if (typeOnly) continue;
      const spec = (m[4] ?? m[5])!;
      targets.push(posix.normalize(posix.join(posix.dirname(from), spec)).replace(/\.js$/, '.ts'));
    }
    graph.set(from, targets);
  }
  return graph;
}

const folderOf = (file: string) => (file.includes('/') ? file.slice(0, file.indexOf('/')) : '.');

describe('architecture: the import graph of src/', () => {
  const graph = importGraph();

  it('finds the sources and their imports', () => {
    assert.ok(graph.size > 50, `only ${graph.size} files`);
    assert.ok(graph.get('gateway.ts')!.includes('pipeline.ts'));
  });

  it('only src/index.ts and src/cli/ import the composition root (src/gateway.ts)', () => {
    const importers = [...graph].filter(([, to]) => to.includes('gateway.ts')).map(([from]) => from);
    assert.deepEqual(importers.filter((f) => f !== 'index.ts' && !f.startsWith('cli/')), []);
  });

  it('no feature folder imports a module at the root of src/ (pipeline, stores, gateway) but cli/ the gateway', () => {
    const offenders = [...graph].flatMap(([from, to]) =>
      folderOf(from) === '.' ? [] : to.filter((t) => folderOf(t) === '.' && !(from.startsWith('cli/') && t === 'gateway.ts')).map((t) => `${from} -> ${t}`),
    );
    assert.deepEqual(offenders, []);
  });

  it('no folder-level cycles', () => {
    const edges = new Map<string, Map<string, string>>();
    for (const [from, to] of graph) {
      for (const t of to) {
        const a = folderOf(from);
        const b = folderOf(t);
        if (a === b || a === '.' || b === '.') continue;
        if (!edges.has(a)) edges.set(a, new Map());
        if (!edges.get(a)!.has(b)) edges.get(a)!.set(b, `${from} -> ${t}`);
      }
    }
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (folder: string, path: string[]) => {
      state.set(folder, 'open');
      for (const [next, why] of edges.get(folder) ?? []) {
        if (state.get(next) === 'open') cycles.push([...path, why].join(', '));
        else if (state.get(next) === undefined) visit(next, [...path, why]);
      }
      state.set(folder, 'done');
    };
    for (const folder of edges.keys()) if (!state.has(folder)) visit(folder, []);
    assert.deepEqual(cycles, []);
  });
});
