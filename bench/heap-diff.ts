/**
 * Compares two V8 heap snapshots (`.heapsnapshot`, as `bench/soak.ts
 * --snapshots` writes them): object counts and sizes by constructor, and
 * what grew most from the first to the second. A leak shows as a
 * constructor whose count keeps growing between snapshots minutes apart.
 *
 *   node bench/heap-diff.ts BEFORE.heapsnapshot AFTER.heapsnapshot [rows=25]
 */
import { readFileSync } from 'node:fs';

interface HeapSnapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

interface Group {
  count: number;
  bytes: number;
}

/** Objects of a snapshot grouped by kind and constructor (`object Map`, `closure foldBatch`, `array`, ...). */
function groupsOf(path: string): Map<string, Group> {
  const heap = JSON.parse(readFileSync(path, 'utf8')) as HeapSnapshot;
  const fields = heap.snapshot.meta.node_fields;
  const types = heap.snapshot.meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const groups = new Map<string, Group>();
  for (let i = 0; i < heap.nodes.length; i += width) {
    const type = types[heap.nodes[i + typeAt]];
    // Strings and code are named by their contents: group them by kind alone.
    const named = type === 'object' || type === 'closure' || type === 'native' || type === 'array' || type === 'hidden';
    const name = named ? `${type} ${heap.strings[heap.nodes[i + nameAt]]}` : type;
    const group = groups.get(name) ?? { count: 0, bytes: 0 };
    group.count += 1;
    group.bytes += heap.nodes[i + sizeAt];
    groups.set(name, group);
  }
  return groups;
}

function main(): void {
  const [before, after, rowsText] = process.argv.slice(2);
  if (!before || !after) {
    console.error('usage: node bench/heap-diff.ts BEFORE.heapsnapshot AFTER.heapsnapshot [rows=25]');
    process.exitCode = 2;
    return;
  }
  const rows = Number(rowsText ?? 25);
  const a = groupsOf(before);
  const b = groupsOf(after);
  const total = (groups: Map<string, Group>): Group => [...groups.values()].reduce((sum, g) => ({ count: sum.count + g.count, bytes: sum.bytes + g.bytes }), { count: 0, bytes: 0 });
  const [ta, tb] = [total(a), total(b)];
  console.log(`before: ${ta.count.toLocaleString('en')} objects, ${(ta.bytes / 2 ** 20).toFixed(1)} MB; after: ${tb.count.toLocaleString('en')} objects, ${(tb.bytes / 2 ** 20).toFixed(1)} MB`);
  const names = new Set([...a.keys(), ...b.keys()]);
  const diffs = [...names].map((name) => {
    const x = a.get(name) ?? { count: 0, bytes: 0 };
    const y = b.get(name) ?? { count: 0, bytes: 0 };
    return { name, count: y.count - x.count, bytes: y.bytes - x.bytes, after: y };
  });
  const show = (title: string, list: typeof diffs): void => {
    console.log(`\n${title}`);
    console.log(`${'Δ count'.padStart(12)} ${'Δ KB'.padStart(10)} ${'count after'.padStart(12)} ${'KB after'.padStart(10)}  constructor`);
    for (const d of list.slice(0, rows)) {
      console.log(`${d.count.toLocaleString('en').padStart(12)} ${(d.bytes / 1024).toFixed(0).padStart(10)} ${d.after.count.toLocaleString('en').padStart(12)} ${(d.after.bytes / 1024).toFixed(0).padStart(10)}  ${d.name}`);
    }
  };
  show('grew most, by bytes', [...diffs].sort((x, y) => y.bytes - x.bytes));
  show('grew most, by count', [...diffs].sort((x, y) => y.count - x.count));
  show('largest in the second snapshot', [...diffs].sort((x, y) => y.after.bytes - x.after.bytes));
}

main();
