/**
 * Reading the PEM files a TLS client or server is configured with
 * (certificates, keys, certificate authorities), with one error for all.
 */
import { readFile } from 'node:fs/promises';
import { NativeError, type ClientOwner } from './client-owner.ts';

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
    throw new NativeError('tls_file', `${owner.label}: cannot read \`${setting}\` file \`${path}\`: ${(error as Error).message.split('\n')[0]}`, { cause: error, cure: 'settings' });
  }
}
