/**
 * Reading the PEM files a TLS client or server is configured with
 * (certificates, keys, certificate authorities), with one error for all.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { NativeError, type ClientOwner } from './client-owner.ts';

/** The error of a file that cannot be read, cured only by the settings. */
function tlsFileError(owner: ClientOwner, setting: string, path: string, error: unknown): NativeError {
  return new NativeError('tls_file', `${owner.label}: cannot read \`${setting}\` file \`${path}\`: ${(error as Error).message.split('\n')[0]}`, { cause: error, cure: 'settings' });
}

/**
 * Reads the file the setting `setting` names; undefined when it names none.
 * A file that cannot be read rejects with a `NativeError` coded `tls_file`,
 * cured only by the settings:
 * `node \`in\` (a.yaml:3): cannot read \`cert\` file \`certs/x.pem\`: ENOENT: no such file or directory, open 'certs/x.pem'`.
 *
 * @example
 * const [cert, key] = await Promise.all([readTlsFile(owner, 'cert', options.cert), readTlsFile(owner, 'key', options.key)]);
 */
export async function readTlsFile(owner: ClientOwner, setting: string, path: string | undefined): Promise<Buffer | undefined> {
  if (path === undefined) return undefined;
  try {
    return await readFile(path);
  } catch (error) {
    throw tlsFileError(owner, setting, path, error);
  }
}

/**
 * `readTlsFile` for a server that must have its certificate before it
 * exists (`createWebServer` builds its server synchronously); a few
 * kilobytes read once at start. Throws the same `tls_file` error.
 */
export function readTlsFileSync(owner: ClientOwner, setting: string, path: string | undefined): Buffer | undefined {
  if (path === undefined) return undefined;
  try {
    return readFileSync(path);
  } catch (error) {
    throw tlsFileError(owner, setting, path, error);
  }
}
