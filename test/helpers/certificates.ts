/**
 * Certificates for the TLS tests, made by openssl in a temporary folder
 * (self-signed P-256, valid one day, for `localhost` and 127.0.0.1), and an
 * HTTPS client that trusts them and reports the certificate it was shown.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { request, type Agent } from 'node:https';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';

/** A certificate made by `makeCertificate`. */
export interface TestCertificate {
  cert: string;
  key: string;
  /** SHA-256 fingerprint, as a TLS client sees it (`getPeerCertificate().fingerprint256`). */
  fingerprint: string;
  /** The certificate's PEM. */
  pem: Buffer;
  /** The key's PEM. */
  keyPem: Buffer;
}

/** Makes `NAME.pem` and `NAME.key` in `dir`. */
export function makeCertificate(dir: string, name: string): TestCertificate {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}.key`);
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', key, '-out', cert],
    { stdio: 'ignore' },
  );
  const pem = readFileSync(cert);
  return { cert, key, fingerprint: new X509Certificate(pem).fingerprint256, pem, keyPem: readFileSync(key) };
}

/** Replaces `target` as renewal tools do: write beside it, then rename over it (a new inode). */
export function replaceFile(target: string, content: Buffer | string): void {
  const temporary = `${target}.tmp-${process.pid}`;
  writeFileSync(temporary, content);
  renameSync(temporary, target);
}

/** The answer of `httpsGet`, with the fingerprint of the certificate the server showed. */
export interface HttpsAnswer {
  status: number;
  body: string;
  fingerprint: string;
  /** Whether the request went over a socket used before (keep-alive). */
  reused: boolean;
}

/** GET (or another method) over HTTPS, trusting `ca` (PEM) only; retries while the server is not listening yet. */
export async function httpsGet(url: string, ca: Buffer | Buffer[], options: { agent?: Agent; method?: string; body?: string } = {}): Promise<HttpsAnswer> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      return await new Promise<HttpsAnswer>((resolve, reject) => {
        const sent = request(url, { ca, method: options.method ?? 'GET', agent: options.agent ?? false, headers: options.body ? { 'content-type': 'application/json' } : {} }, (response) => {
          const socket = response.socket as TLSSocket;
          const fingerprint = socket.getPeerCertificate().fingerprint256;
          const reused = sent.reusedSocket;
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), fingerprint, reused }));
          response.on('error', reject);
        });
        sent.on('error', reject);
        sent.end(options.body);
      });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ECONNREFUSED' || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}
