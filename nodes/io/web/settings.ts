/**
 * The settings the web servers (`ws.server`, `sse.server`, `http.server`,
 * and `serve.http` for `listen` and `tls`) and the embedded MQTT broker
 * share: where to listen, on which paths, HTTPS, the secrets clients
 * present, and the bound on a slow client. The plumbing
 * behind them is in `native/http/`.
 */
import { getHashes } from 'node:crypto';
import { checkInputFile, size, z, type PathProblem } from '../../../runtime/api.ts';
import { parseListen, type ListenAddress } from '../../../native/http/listen.ts';
import type { TlsFiles } from '../../../native/http/server.ts';

/** The `listen` setting: an address to bind, loopback unless a host is given. */
export function listenSetting(defaultPort: number) {
  return z
    .union([z.string(), z.number().int()])
    .transform(function parseListenSetting(value, ctx): ListenAddress {
      const parsed = parseListen(value);
      if (typeof parsed === 'string') {
        ctx.addIssue({ code: 'custom', message: parsed });
        return z.NEVER;
      }
      return parsed;
    })
    .prefault(`127.0.0.1:${defaultPort}`)
    .meta({
      description: `The address to listen on, \`host:port\`; a bare port (or \`:port\`) binds 127.0.0.1. Use \`0.0.0.0:${defaultPort}\` to accept connections from other machines, port 0 for any free port.`,
      examples: [`127.0.0.1:${defaultPort}`, `0.0.0.0:${defaultPort}`],
    });
}

/** The path setting of a server: one path or several, each starting with `/`. */
export function pathsSetting(description: string) {
  return z
    .union([z.string(), z.array(z.string()).min(1)])
    .transform(function normalisePaths(value): string[] {
      return (Array.isArray(value) ? value : [value]).map((path) => (path.startsWith('/') ? path : `/${path}`));
    })
    .prefault('/')
    .meta({ description, examples: ['/', ['/feed', '/alerts']] });
}

/**
 * A secret setting (a token, an HMAC key). `${env:NAME}` substitution turns a
 * value that spells a number into a number; a secret is text whatever it spells.
 */
export function secretSetting() {
  return z.union([z.string().min(1), z.number()]).transform(String);
}

/** The `client_queue` setting. */
export function clientQueueSetting() {
  return z
    .object({
      messages: z.number().int().min(1).default(1024).meta({ description: 'Messages that may wait for one client.', examples: [1024] }),
      bytes: size().prefault('1MiB').meta({ description: 'Bytes that may wait for one client.', examples: ['1MiB', '256KiB'] }),
    })
    .prefault({})
    .meta({ description: 'The bound on what waits for one slow client; past it the client is disconnected and the drop counted with reason `slow_client`.' });
}

// Read on first use: listing the hashes loads node:crypto, which `validate` of a pipeline without `hmac` never needs.
let hashes: Set<string> | undefined;

/** The `hmac` setting: a signature of the body in a header, as GitHub, Shopify and most webhook senders send. */
export function hmacSetting() {
  return z
    .object({
      secret: secretSetting().meta({ description: 'The shared secret; write it as `${env:NAME}`, never in the file.', examples: ['${env:WEBHOOK_SECRET}'] }),
      header: z.string().min(1).default('X-Hub-Signature-256').meta({ description: 'The request header carrying the signature.', examples: ['X-Hub-Signature-256', 'X-Shopify-Hmac-Sha256'] }),
      algorithm: z
        .string()
        .default('sha256')
        .refine((name) => (hashes ??= new Set(getHashes())).has(name), { message: 'unknown hash algorithm (use `sha256`, `sha1` or `sha512`)' })
        .meta({ description: 'The hash of the HMAC.', examples: ['sha256', 'sha1'] }),
      prefix: z.string().optional().meta({ description: 'Text before the digest in the header; by default the algorithm and `=` (GitHub\'s `sha256=`). `""` for a bare digest.', examples: ['sha256=', ''] }),
      encoding: z.enum(['hex', 'base64']).default('hex').meta({ description: 'How the digest is written: `hex` or `base64`.' }),
    })
    .optional()
    .meta({
      description: 'Checks an HMAC signature of the raw body (requests without a valid one get 401).',
      examples: [{ secret: '${env:GITHUB_WEBHOOK_SECRET}', header: 'X-Hub-Signature-256' }],
    });
}


/**
 * The `tls` setting of every HTTP server operator (`http.server`,
 * `sse.server`, `ws.server`, `serve.http`, the edge `cache`): HTTPS from a
 * PEM certificate and key, reloaded when the files change.
 */
export function tlsSetting() {
  return z
    .object({
      cert: z.string().min(1).meta({ description: 'The PEM certificate file, followed by its intermediates (certbot\'s `fullchain.pem`); relative to the pipeline file\'s folder.', examples: ['certs/fullchain.pem'] }),
      key: z.string().min(1).meta({ description: 'The PEM private key of `cert`, unencrypted (certbot\'s `privkey.pem`).', examples: ['certs/privkey.pem'] }),
    })
    .optional()
    .meta({
      description: 'Serve HTTPS (HTTP/1.1, WebSocket upgrades included) instead of HTTP. The files are read at start (a missing file or a key that is not the certificate\'s stops the node); their folders are then watched, and a renewed pair serves new connections within a second, with no restart and no connection dropped; a broken renewal is logged and the pair in use kept. See docs/tls.md for ACME renewal.',
      examples: [{ cert: 'certs/fullchain.pem', key: 'certs/privkey.pem' }],
    });
}

/** The `tls` setting as the server factory takes it: the files made absolute against the pipeline file's folder. */
export function tlsFiles(tls: { cert: string; key: string } | undefined, resolvePath: (path: string) => string): TlsFiles | undefined {
  return tls === undefined ? undefined : { cert: resolvePath(tls.cert), key: resolvePath(tls.key) };
}

/** What `streams validate` checks of the `tls` setting: both files exist. */
export function checkTlsPaths(tls: { cert: string; key: string } | undefined, resolvePath: (path: string) => string): PathProblem[] {
  if (tls === undefined) return [];
  return [checkInputFile('tls.cert', resolvePath(tls.cert)), checkInputFile('tls.key', resolvePath(tls.key))].filter((problem): problem is PathProblem => problem !== undefined);
}
