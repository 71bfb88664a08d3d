import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

/**
 * Node options that make a process print, at exit, the URL of every module
 * it loaded (one JSON line on stderr).
 */
const traceModules = [
  '--import',
  `data:text/javascript,import{registerHooks}from'node:module';const seen=[];registerHooks({load(url,context,next){seen.push(url);return next(url,context)}});process.on('exit',()=>process.stderr.write('\\n'+JSON.stringify(seen)+'\\n'))`,
];

function loadedBy(...args: string[]): string[] {
  const result = spawnSync(process.execPath, [...traceModules, 'bin/streams.ts', ...args], { encoding: 'utf8', timeout: 60_000 });
  expect(result.status).toBe(0);
  return (JSON.parse(result.stderr.trim().split('\n').at(-1)!) as string[]).filter((url) => !url.startsWith('node:'));
}

const root = new URL('../../', import.meta.url).href;
const local = (urls: string[]): string[] => urls.map((url) => url.replace(root, ''));

describe('start-up loads only what the command needs', () => {
  it('`--help` loads the CLI table and no package', () => {
    const loaded = local(loadedBy('--help'));
    expect(loaded.filter((path) => path.includes('node_modules/'))).toEqual([]);
    expect(loaded.filter((path) => !path.startsWith('bin/') && !path.startsWith('cli/'))).toEqual([]);
  });

  it('`validate` loads neither `run` nor the engine, its logging and metrics', () => {
    const loaded = local(loadedBy('validate', 'pipelines/demo.yaml'));
    expect(loaded).toContain('cli/validate.ts');
    for (const path of ['cli/run.ts', 'cli/pipeline-test.ts', 'runtime/engine.ts', 'runtime/metrics.ts', 'runtime/log.ts']) expect(loaded).not.toContain(path);
    for (const name of ['pino', 'prom-client']) expect(loaded.some((path) => path.includes(`node_modules/${name}/`)), name).toBe(false);
  });
});
