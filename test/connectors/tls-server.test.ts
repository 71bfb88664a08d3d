/**
 * `createWebServer` with TLS, against real HTTPS clients on loopback: the
 * certificate served, start-up errors, a renewal by rename picked up
 * without a restart while a keep-alive connection goes on, a broken
 * renewal refused with the old pair kept, the watch ending with the
 * server, and the embedded MQTT broker renewed by the same watch.
 */
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { Agent } from 'node:https';
import type { Server } from 'node:http';
import { connect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { closeServer, listenOn } from '../../native/http/listen.ts';
import { createWebServer, isSecure } from '../../native/http/server.ts';
import { openBroker } from '../../native/mqtt/broker.ts';
import { httpsGet, makeCertificate, replaceFile, type TestCertificate } from '../helpers/certificates.ts';
import { recordingLogger, until } from './http-harness.ts';

let dir: string;
let first: TestCertificate;
let second: TestCertificate;
let third: TestCertificate;
const servers: Server[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'streams-tls-'));
  first = makeCertificate(dir, 'first');
  second = makeCertificate(dir, 'second');
  third = makeCertificate(dir, 'third');
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => closeServer(server, 100)));
});

/** A folder holding `live.pem` and `live.key`, a copy of `first`, as a renewal tool's output folder would. */
function liveFolder(name: string): { cert: string; key: string } {
  const folder = mkdtempSync(join(dir, `${name}-`));
  const files = { cert: join(folder, 'live.pem'), key: join(folder, 'live.key') };
  copyFileSync(first.cert, files.cert);
  copyFileSync(first.key, files.key);
  return files;
}

async function start(files: { cert: string; key: string }, log = recordingLogger(), reloadDelayMs?: number): Promise<{ url: string; server: Server }> {
  const owner = { node: 'edge', label: 'node `edge` (edge.yaml:4)', log };
  const server = createWebServer({ owner, tls: files, ...(reloadDelayMs !== undefined ? { reloadDelayMs } : {}) }, (_request, response) => {
    response.end('hello');
  });
  servers.push(server);
  const bound = await listenOn(server, { host: '127.0.0.1', port: 0 }, owner.label);
  return { url: `https://127.0.0.1:${bound.port}/`, server };
}

describe('createWebServer', () => {
  it('serves plain HTTP without tls, HTTPS with it', async () => {
    const owner = { node: 'web', label: 'node `web`', log: recordingLogger() };
    const plain = createWebServer({ owner }, (_request, response) => response.end('plain'));
    servers.push(plain);
    const bound = await listenOn(plain, { host: '127.0.0.1', port: 0 }, owner.label);
    expect(isSecure(plain)).toBe(false);
    expect(await (await fetch(`http://127.0.0.1:${bound.port}/`)).text()).toBe('plain');

    const log = recordingLogger();
    const { url, server } = await start(liveFolder('serves'), log);
    expect(isSecure(server)).toBe(true);
    const answer = await httpsGet(url, first.pem);
    expect(answer).toMatchObject({ status: 200, body: 'hello', fingerprint: first.fingerprint });
    expect(log.entries.find((e) => e.message.includes('serving TLS'))?.fields).toMatchObject({ fingerprint: first.fingerprint });
    // A client that does not trust the certificate is refused by its own check.
    await expect(httpsGet(url, second.pem)).rejects.toThrow(/self-signed certificate/);
  });

  it('refuses to start without its files, or with a key that is not the certificate\'s, naming the owner and the path', () => {
    const owner = { node: 'edge', label: 'node `edge` (edge.yaml:4)', log: recordingLogger() };
    const missing = join(dir, 'nope.pem');
    expect(() => createWebServer({ owner, tls: { cert: missing, key: first.key } })).toThrow(
      expect.objectContaining({ code: 'tls_file', cure: 'settings', message: `node \`edge\` (edge.yaml:4): cannot read \`tls.cert\` file \`${missing}\`: ENOENT: no such file or directory, open '${missing}'` }),
    );
    expect(() => createWebServer({ owner, tls: { cert: first.cert, key: second.key } })).toThrow(
      expect.objectContaining({ code: 'tls_pair', cure: 'settings', message: expect.stringMatching(new RegExp(`^node \`edge\` \\(edge\\.yaml:4\\): the TLS certificate \`${first.cert}\` and key \`${second.key}\` cannot be used: .*key values mismatch`)) }),
    );
    expect(() => createWebServer({ owner, tls: { cert: first.key, key: first.key } })).toThrow(expect.objectContaining({ code: 'tls_pair' }));
    expect(() => createWebServer({ owner, tls: { cert: first.cert, key: first.key, ca: missing }, settingNames: { cert: '--c', key: '--k', ca: '--ca' } })).toThrow(
      expect.objectContaining({ code: 'tls_file', message: expect.stringContaining(`cannot read \`--ca\` file \`${missing}\``) }),
    );
  });

  it('serves a renewed certificate to new connections within a second, while a keep-alive connection goes on', async () => {
    const files = liveFolder('renew');
    const log = recordingLogger();
    const { url } = await start(files, log);
    const trusted = [first.pem, second.pem];
    const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: trusted });
    try {
      const before = await httpsGet(url, trusted, { agent });
      expect(before.fingerprint).toBe(first.fingerprint);

      // As certbot or cert-manager do: new files renamed over the old ones.
      const renewed = Date.now();
      replaceFile(files.key, second.keyPem);
      replaceFile(files.cert, second.pem);
      let seen = '';
      for (;;) {
        seen = (await httpsGet(url, trusted)).fingerprint;
        if (seen === second.fingerprint || Date.now() - renewed > 3_000) break;
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      expect(seen).toBe(second.fingerprint);
      expect(Date.now() - renewed).toBeLessThan(1_000);

      // The connection opened before the renewal was not dropped: it answers, still with the old certificate.
      const after = await httpsGet(url, trusted, { agent });
      expect(after).toMatchObject({ status: 200, reused: true, fingerprint: first.fingerprint });
      expect(log.entries.find((e) => e.message.includes('new TLS certificate'))).toMatchObject({
        level: 'info',
        message: `node \`edge\` (edge.yaml:4): new TLS certificate from \`${files.cert}\` serves new connections`,
        fields: { fingerprint: second.fingerprint },
      });
    } finally {
      agent.destroy();
    }
  });

  it('keeps the certificate in use when the new files are broken, says so once with the node and the path, and takes the next good pair', async () => {
    const files = liveFolder('broken');
    const log = recordingLogger();
    const { url } = await start(files, log, 50);
    const trusted = [first.pem, second.pem, third.pem];

    // A certificate whose key was not replaced: the pair does not match.
    replaceFile(files.cert, second.pem);
    await until(() => log.entries.some((e) => e.level === 'warn'), 'a warning', 3_000);
    const warnings = (): typeof log.entries => log.entries.filter((e) => e.level === 'warn');
    expect(warnings()[0].message).toMatch(
      new RegExp(`^node \`edge\` \\(edge\\.yaml:4\\): the TLS certificate \`${files.cert}\` and key \`${files.key}\` cannot be used: .*key values mismatch.*; the certificate in use \\(${first.fingerprint.slice(0, 11)}\\.\\.\\., valid to .*\\) stays until the files are fixed$`),
    );
    expect(warnings()[0].fields).toMatchObject({ code: 'tls_pair', cert: files.cert, key: files.key });
    expect((await httpsGet(url, trusted)).fingerprint).toBe(first.fingerprint);

    // Touching the folder again with the same broken pair does not repeat the warning.
    replaceFile(join(files.cert, '..', 'unrelated.txt'), 'x');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(warnings()).toHaveLength(1);

    // A file that is not PEM at all is refused as well.
    replaceFile(files.key, 'not a key\n');
    await until(() => warnings().length === 2, 'a second warning', 3_000);
    expect((await httpsGet(url, trusted)).fingerprint).toBe(first.fingerprint);

    // The matching key arrives: the pair is taken.
    replaceFile(files.cert, third.pem);
    replaceFile(files.key, third.keyPem);
    await until(() => log.entries.some((e) => e.message.includes('new TLS certificate')), 'the fixed pair', 3_000);
    expect((await httpsGet(url, trusted)).fingerprint).toBe(third.fingerprint);
  });

  it('stops watching the files when the server closes', async () => {
    const files = liveFolder('closed');
    const log = recordingLogger();
    const { server } = await start(files, log, 20);
    await closeServer(server, 100);
    replaceFile(files.key, second.keyPem);
    replaceFile(files.cert, second.pem);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(log.entries.filter((e) => e.level !== 'info' || e.message.includes('new TLS'))).toEqual([]);
  });

  it('renews the embedded MQTT broker\'s certificate the same way', async () => {
    const files = liveFolder('broker');
    const log = recordingLogger();
    const broker = await openBroker({ node: 'broker', label: 'node `broker` (b.yaml:4)', log }, { listen: { host: '127.0.0.1', port: 0 }, ...files });
    try {
      const shown = (): Promise<string> =>
        new Promise((resolve, reject) => {
          const socket = connect({ host: '127.0.0.1', port: broker.address.port, ca: [first.pem, second.pem], servername: 'localhost' }, () => {
            resolve(socket.getPeerCertificate().fingerprint256);
            socket.destroy();
          });
          socket.on('error', reject);
        });
      expect(broker.url).toMatch(/^mqtts:/);
      expect(await shown()).toBe(first.fingerprint);
      replaceFile(files.key, second.keyPem);
      replaceFile(files.cert, second.pem);
      await until(() => log.entries.some((e) => e.message.includes('new TLS certificate')), 'the renewal', 3_000);
      expect(await shown()).toBe(second.fingerprint);
    } finally {
      await broker.close();
    }
  });
});
