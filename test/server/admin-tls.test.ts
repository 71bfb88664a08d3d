/**
 * The admin server over HTTPS: the API and the live feed (WSS) from a
 * certificate and key, a renewal served without a restart, and `streams
 * run --ui --ui-tls-cert --ui-tls-key` from the command line, including a
 * missing file and the rule that a non-loopback address needs a token.
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { uiOptions } from '../../cli/run-ui.ts';
import { startAdminServer } from '../../runtime/server/admin.ts';
import { LiveFeed } from '../../runtime/server/live-feed.ts';
import { Taps } from '../../runtime/server/taps.ts';
import { httpsGet, makeCertificate, replaceFile, type TestCertificate } from '../helpers/certificates.ts';
import { startYaml } from '../helpers/pipeline.ts';
import { recordingLogger } from '../connectors/http-harness.ts';

let dir: string;
let first: TestCertificate;
let second: TestCertificate;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'streams-admin-tls-'));
  first = makeCertificate(dir, 'first');
  second = makeCertificate(dir, 'second');
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const yaml = `
streams: 1
name: secure
nodes:
  gen: { op: generate, with: { rate: 50, fields: { n: i } } }
  keep: { op: filter, in: gen, with: { where: "n >= 0" } }
  out: { op: stdout, in: keep, with: {} }
`;

describe('the admin server with TLS', () => {
  it('serves the API and the live feed over HTTPS and WSS, and a renewed certificate without a restart', async () => {
    const live = mkdtempSync(join(dir, 'live-'));
    const tls = { cert: join(live, 'cert.pem'), key: join(live, 'key.pem') };
    copyFileSync(first.cert, tls.cert);
    copyFileSync(first.key, tls.key);
    const engine = startYaml(yaml.replace('op: stdout, in: keep, with: {}', 'op: test.collect, in: keep, with: { into: admin-tls, summary: true }'));
    const feed = new LiveFeed(engine);
    const taps = new Taps(engine);
    const log = recordingLogger();
    const server = await startAdminServer({ listen: { host: '127.0.0.1', port: 18301 }, token: 'secret', feed, taps, tls, log });
    try {
      const base = 'https://127.0.0.1:18301';
      expect(await httpsGet(`${base}/healthz`, first.pem)).toMatchObject({ status: 200, fingerprint: first.fingerprint });
      expect((await httpsGet(`${base}/api/graph`, first.pem)).status).toBe(401);

      const socket = new WebSocket('wss://127.0.0.1:18301/api/live', ['streams.v1', `streams.bearer.${Buffer.from('secret').toString('base64url')}`], { ca: first.pem });
      const snapshot = await new Promise<unknown>((resolve, reject) => {
        socket.once('message', (data) => resolve(JSON.parse(String(data))));
        socket.once('error', reject);
      });
      expect(JSON.stringify(snapshot)).toContain('graph.plan');
      socket.close();

      const renewed = Date.now();
      replaceFile(tls.key, second.keyPem);
      replaceFile(tls.cert, second.pem);
      for (;;) {
        const answer = await httpsGet(`${base}/healthz`, [first.pem, second.pem]);
        if (answer.fingerprint === second.fingerprint) break;
        expect(Date.now() - renewed).toBeLessThan(1_000);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      expect(log.entries.some((e) => e.message === `\`--ui\`: new TLS certificate from \`${tls.cert}\` serves new connections`)).toBe(true);
    } finally {
      await server.close();
      taps.stop();
      await engine.drain();
    }
  });

  it('names the option whose file cannot be read', async () => {
    const engine = startYaml(yaml.replace('op: stdout, in: keep, with: {}', 'op: test.collect, in: keep, with: { into: admin-tls-missing, summary: true }'));
    const missing = join(dir, 'missing.pem');
    try {
      await expect(startAdminServer({ listen: { host: '127.0.0.1', port: 18302 }, feed: new LiveFeed(engine), taps: new Taps(engine), tls: { cert: missing, key: first.key } })).rejects.toThrow(
        `\`--ui\`: cannot read \`--ui-tls-cert\` file \`${missing}\``,
      );
    } finally {
      await engine.drain();
    }
  });
});

describe('--ui-tls-cert and --ui-tls-key', () => {
  it('take both files, with --ui, made absolute; and TLS does not lift the token rule beyond loopback', () => {
    expect(uiOptions({ ui: '18303', 'ui-tls-cert': 'c.pem', 'ui-tls-key': 'k.pem' }, {})).toEqual({
      listen: { host: '127.0.0.1', port: 18303 },
      tls: { cert: join(process.cwd(), 'c.pem'), key: join(process.cwd(), 'k.pem') },
    });
    expect(() => uiOptions({ ui: '18303', 'ui-tls-cert': 'c.pem' }, {})).toThrow('--ui-tls-cert needs --ui-tls-key');
    expect(() => uiOptions({ ui: '18303', 'ui-tls-key': 'k.pem' }, {})).toThrow('--ui-tls-key needs --ui-tls-cert');
    expect(() => uiOptions({ 'ui-tls-cert': 'c.pem', 'ui-tls-key': 'k.pem' }, {})).toThrow('--ui-tls-cert and --ui-tls-key need --ui HOST:PORT');
    expect(() => uiOptions({ ui: '0.0.0.0:18303', 'ui-tls-cert': 'c.pem', 'ui-tls-key': 'k.pem' }, {})).toThrow(
      '--ui: refusing to serve the admin API on 0.0.0.0 (not loopback) without a token',
    );
    expect(uiOptions({ ui: '0.0.0.0:18303', 'ui-tls-cert': 'c.pem', 'ui-tls-key': 'k.pem' }, { STREAMS_UI_TOKEN: 't' })).toMatchObject({ token: 't', tls: { cert: join(process.cwd(), 'c.pem') } });
  });

  it('make `streams run --ui` serve HTTPS, and a missing file end the command with a clear message', async () => {
    const file = join(dir, 'secure.yaml');
    writeFileSync(file, yaml);
    const missing = join(dir, 'nope.pem');
    const refused = spawnSync(process.execPath, ['bin/streams.ts', 'run', file, '--ui', '127.0.0.1:18304', '--ui-tls-cert', missing, '--ui-tls-key', first.key], { encoding: 'utf8', timeout: 30_000 });
    expect(refused.status).toBe(2);
    expect(refused.stderr).toContain(`\`--ui\`: cannot read \`--ui-tls-cert\` file \`${missing}\`: ENOENT`);
    expect(refused.stderr).not.toMatch(/\n\s+at /);

    const child = spawn(process.execPath, ['bin/streams.ts', 'run', file, '--ui', '127.0.0.1:18305', '--ui-tls-cert', first.cert, '--ui-tls-key', first.key, '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    try {
      const answer = await httpsGet('https://127.0.0.1:18305/healthz', first.pem);
      expect(answer).toMatchObject({ status: 200, fingerprint: first.fingerprint });
      expect(stderr).toContain('visualiser at https://127.0.0.1:18305/');
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.on('exit', resolve));
    }
  });
});
