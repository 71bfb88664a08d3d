import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

describe('the packed package', () => {
  it('installs from its tarball into an empty folder, without a Node binary, and runs `streams` there', { timeout: 180_000 }, async () => {
    const packs = mkdtempSync(join(tmpdir(), 'streams-pack-'));
    const home = mkdtempSync(join(tmpdir(), 'streams-install-'));
    const checkoutManifest = readFileSync('package.json', 'utf8');
    // `npm pack` runs `prepack`, which compiles the shipped code to dist/.
    execFileSync(npm, ['pack', '--silent', '--pack-destination', packs], { stdio: ['ignore', 'ignore', 'pipe'] });
    const tarball = join(packs, readdirSync(packs).find((name) => name.endsWith('.tgz'))!);
    writeFileSync(join(home, 'package.json'), '{ "private": true }\n');
    // The dependencies are in npm's cache after `npm ci`; the registry is asked only for what is not.
    execFileSync(npm, ['install', '--prefer-offline', '--no-audit', '--no-fund', '--silent', tarball], { cwd: home, stdio: ['ignore', 'ignore', 'pipe'] });

    const installed = join(home, 'node_modules', 'ami-streams');
    const manifest = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; scripts: Record<string, string> };
    expect(manifest.dependencies).not.toHaveProperty('node');
    // The checkout's `prepare` (it builds the page at `npm ci`) does not ship: npm would warn about it on every install.
    expect(manifest.scripts).not.toHaveProperty('prepare');
    expect(readFileSync('package.json', 'utf8')).toBe(checkoutManifest);
    expect(existsSync(join(home, 'node_modules', 'node'))).toBe(false);
    // Only bundled JavaScript ships: Node refuses to strip types under node_modules.
    expect(existsSync(join(installed, 'dist', 'bin', 'streams.js'))).toBe(true);
    expect(readdirSync(join(installed, 'dist'), { recursive: true, encoding: 'utf8' }).filter((path) => path.endsWith('.ts'))).toEqual([]);
    expect(existsSync(join(installed, 'cli'))).toBe(false);
    expect(existsSync(join(installed, 'bin', 'streams.ts'))).toBe(false);
    expect(existsSync(join(installed, 'dist', 'test'))).toBe(false);

    // The bin link (bin/streams.js, which runs dist/ when no sources ship), through its `#!/usr/bin/env node` line.
    const bin = join(home, 'node_modules', '.bin', 'streams');
    const env = { ...process.env, PATH: `${join(process.execPath, '..')}:${process.env.PATH}` };
    const help = spawnSync(bin, ['--help'], { cwd: home, encoding: 'utf8', env });
    expect(help.stderr).toBe('');
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('Usage: streams COMMAND');

    writeFileSync(
      join(home, 'hello.yaml'),
      'streams: 1\nname: hello\nnodes:\n  numbers:\n    op: generate\n    with: { count: 3, fields: { n: "i * 2" } }\n  out: { op: stdout, in: numbers }\n',
    );
    const run = spawnSync(bin, ['run', 'hello.yaml', '--log-level', 'warn'], { cwd: home, encoding: 'utf8', env });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout.trim().split('\n').map((line) => (JSON.parse(line) as { n: number }).n)).toEqual([0, 2, 4]);

    // A shipped example runs from the package as it is, on the sample data it names (relative to its own file).
    const output = join(home, 'w1-stats.ndjson');
    const w1 = spawnSync(bin, ['run', join(installed, 'pipelines', 'w1-iot-rollup.yaml'), '--param', `output=${output}`, '--log-level', 'warn'], { cwd: home, encoding: 'utf8', env });
    expect(w1.stderr).toBe('');
    expect(w1.status).toBe(0);
    expect(readFileSync(output, 'utf8').trim().split('\n').length).toBeGreaterThan(10);

    // The visualiser page ships built (dist/ui) and is found by the bundle.
    writeFileSync(join(home, 'live.yaml'), 'streams: 1\nname: live\nnodes:\n  numbers: { op: generate, with: { rate: 10 } }\n  out: { op: file.write, in: numbers, with: { path: /dev/null } }\n');
    const live = spawn(bin, ['run', 'live.yaml', '--ui', '127.0.0.1:19506', '--log-level', 'warn'], { cwd: home, env, stdio: 'ignore' });
    try {
      let page: Response | undefined;
      for (let i = 0; i < 100 && !page; i++) {
        page = await fetch('http://127.0.0.1:19506/').catch(() => undefined);
        if (!page) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(page!.status).toBe(200);
      expect(await page!.text()).toContain('<script src="app.js">');
      expect((await fetch('http://127.0.0.1:19506/app.js')).status).toBe(200);
    } finally {
      live.kill('SIGTERM');
      await new Promise((resolve) => live.on('exit', resolve));
    }
  });
});
