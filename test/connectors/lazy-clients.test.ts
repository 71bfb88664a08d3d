/**
 * Client libraries load only when a node that needs them starts: importing
 * the operator registry (what every command does) loads none of them. Run
 * in a child process, since this test process has loaded them already.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const clientLibraries = ['mqtt', 'aedes', '@platformatic/kafka', 'kafkajs', 'ioredis', 'pg', 'ws'];

/** The packages (under node_modules) a child process resolved while importing `modules`, in order. */
function packagesLoadedBy(modules: string[], then = ''): string[] {
  const script = `
    import { registerHooks } from 'node:module';
    const loaded = new Set();
    registerHooks({
      resolve(specifier, context, next) {
        const result = next(specifier, context);
        const inPackage = /\\/node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(result.url);
        if (inPackage) loaded.add(inPackage[1]);
        return result;
      },
    });
    const imported = [];
    for (const path of ${JSON.stringify(modules)}) imported.push(await import(new URL(path, ${JSON.stringify(`file://${root}/`)}).href));
    ${then}
    console.log(JSON.stringify([...loaded]));
  `;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8', timeout: 20_000 });
  return JSON.parse(out.trim().split('\n').at(-1)!) as string[];
}

describe('client libraries load lazily', () => {
  it('loading every operator (nodes/all.ts) loads no client library', () => {
    const loaded = packagesLoadedBy(['nodes/all.ts', 'runtime/state/store.ts', 'runtime/server/metrics.ts']);
    expect(loaded).toContain('rxjs');
    expect(loaded.filter((name) => clientLibraries.includes(name))).toEqual([]);
  });

  it('opening a client loads its library then (the probe sees a load when there is one)', () => {
    const loaded = packagesLoadedBy(['native/redis/client.ts'], `
      await imported[0].connectRedisOnce('redis://127.0.0.1:1', { connectionName: 'probe', describedAs: 'a probe' }).catch(() => undefined);
    `);
    expect(loaded).toContain('ioredis');
  });
});
