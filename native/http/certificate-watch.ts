/**
 * A server's certificate and key: read and checked as a pair, then watched
 * and swapped in when the files change. Renewal tools replace the files by
 * renaming a new one over the old (certbot re-points the symbolic links of
 * `live/`, cert-manager swaps the `..data` link of a mounted secret), which
 * replaces the file's inode: a watch on the file itself would go quiet
 * after the first renewal, so the folders holding the files are watched.
 */
import { X509Certificate } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createSecureContext, type Server as TlsServer } from 'node:tls';
import { NativeError, type ClientOwner } from '../client-owner.ts';
import { readTlsFile, readTlsFileSync } from '../tls-file.ts';

/** The PEM files of a TLS server: its certificate (the full chain), its private key, and optionally CA certificates. */
export interface TlsFiles {
  /** The certificate, followed by its intermediates (certbot's `fullchain.pem`). */
  cert: string;
  /** The private key of `cert`, unencrypted. */
  key: string;
  /** CA certificates OpenSSL may complete the chain from, when `cert` holds the certificate alone. */
  ca?: string;
}

/** How messages name each file's setting (`tls.cert`, `--ui-tls-cert`). */
export interface TlsSettingNames {
  cert: string;
  key: string;
  ca?: string;
}

/** A pair checked to work together, and what the logs say of it. */
export interface LoadedCertificate {
  context: { cert: Buffer; key: Buffer; ca?: Buffer };
  /** SHA-256 fingerprint of the leaf certificate, `AB:CD:...`, as `openssl x509 -fingerprint -sha256` prints it. */
  fingerprint: string;
  /** When the leaf certificate expires, as OpenSSL prints it. */
  validTo: string;
}

/** The first line of an error's message. */
function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0];
}

/**
 * Checks that `material` makes a usable server context (PEM that parses,
 * a key that matches the certificate); throws a `tls_pair` error naming
 * both files otherwise.
 */
function checkPair(owner: ClientOwner, files: TlsFiles, material: LoadedCertificate['context']): LoadedCertificate {
  try {
    createSecureContext(material);
    const leaf = new X509Certificate(material.cert);
    return { context: material, fingerprint: leaf.fingerprint256, validTo: leaf.validTo };
  } catch (error) {
    const reason = firstLine(error).replace(/^error:[0-9A-F]+:/, '');
    throw new NativeError(
      'tls_pair',
      `${owner.label}: the TLS certificate \`${files.cert}\` and key \`${files.key}\` cannot be used: ${reason} (both must be PEM, and the key the certificate's own)`,
      { cause: error, cure: 'settings' },
    );
  }
}

/** Reads and checks the files at start; throws `tls_file` or `tls_pair` errors, cured only by the settings. */
export function loadCertificate(owner: ClientOwner, files: TlsFiles, names: TlsSettingNames): LoadedCertificate {
  const cert = readTlsFileSync(owner, names.cert, files.cert)!;
  const key = readTlsFileSync(owner, names.key, files.key)!;
  const ca = readTlsFileSync(owner, names.ca ?? 'ca', files.ca);
  const loaded = checkPair(owner, files, { cert, key, ...(ca ? { ca } : {}) });
  owner.log.info({ cert: files.cert, fingerprint: loaded.fingerprint, valid_to: loaded.validTo }, `${owner.label}: serving TLS with the certificate \`${files.cert}\``);
  return loaded;
}

function sameMaterial(a: LoadedCertificate['context'], b: LoadedCertificate['context']): boolean {
  const sameCa = a.ca === undefined || b.ca === undefined ? a.ca === b.ca : a.ca.equals(b.ca);
  return a.cert.equals(b.cert) && a.key.equals(b.key) && sameCa;
}

/**
 * Watches the folders of a server's TLS files and gives the server each new
 * valid pair (`setSecureContext`: new handshakes use it, open connections
 * keep theirs). Changes are debounced, since a renewal writes several
 * files; a pair that fails is logged once and the current one kept, and
 * the next change is read again.
 */
export class CertificateWatch {
  readonly #server: TlsServer;
  readonly #owner: ClientOwner;
  readonly #files: TlsFiles;
  readonly #names: TlsSettingNames;
  readonly #delayMs: number;
  readonly #watchers: FSWatcher[] = [];
  #current: LoadedCertificate;
  #timer: NodeJS.Timeout | undefined;
  #reading = false;
  #again = false;
  #stopped = false;
  /** The last refusal logged, so a broken file left in place is reported once, not at every change around it. */
  #lastRefusal: string | undefined;

  constructor(server: TlsServer, owner: ClientOwner, files: TlsFiles, names: TlsSettingNames, loaded: LoadedCertificate, delayMs: number) {
    this.#server = server;
    this.#owner = owner;
    this.#files = files;
    this.#names = names;
    this.#current = loaded;
    this.#delayMs = delayMs;
    const folders = new Set([files.cert, files.key, files.ca].filter((path): path is string => path !== undefined).map((path) => dirname(resolve(path))));
    for (const folder of folders) this.#watch(folder);
  }

  #watch(folder: string): void {
    try {
      // Not persistent: a watcher never keeps the process alive; the server does that.
      const watcher = watch(folder, { persistent: false }, () => this.#changed());
      watcher.on('error', (error) => {
        this.#owner.log.warn({ folder, error: firstLine(error) }, `${this.#owner.label}: stopped watching \`${folder}\` for new TLS certificates: ${firstLine(error)}`);
      });
      this.#watchers.push(watcher);
    } catch (error) {
      this.#owner.log.warn({ folder, error: firstLine(error) }, `${this.#owner.label}: cannot watch \`${folder}\` for new TLS certificates (a renewal needs a restart): ${firstLine(error)}`);
    }
  }

  /** Any change in a watched folder: read the files once things are quiet. */
  #changed(): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#reload(), this.#delayMs);
  }

  async #reload(): Promise<void> {
    if (this.#reading) {
      this.#again = true;
      return;
    }
    this.#reading = true;
    const owner = this.#owner;
    try {
      const [cert, key, ca] = await Promise.all([
        readTlsFile(owner, this.#names.cert, this.#files.cert),
        readTlsFile(owner, this.#names.key, this.#files.key),
        readTlsFile(owner, this.#names.ca ?? 'ca', this.#files.ca),
      ]);
      const material = { cert: cert!, key: key!, ...(ca ? { ca } : {}) };
      if (this.#stopped || sameMaterial(material, this.#current.context)) return;
      const loaded = checkPair(owner, this.#files, material);
      this.#server.setSecureContext(loaded.context);
      this.#current = loaded;
      this.#lastRefusal = undefined;
      owner.log.info(
        { cert: this.#files.cert, fingerprint: loaded.fingerprint, valid_to: loaded.validTo },
        `${owner.label}: new TLS certificate from \`${this.#files.cert}\` serves new connections`,
      );
    } catch (error) {
      const reason = firstLine(error);
      if (!this.#stopped && reason !== this.#lastRefusal) {
        this.#lastRefusal = reason;
        owner.log.warn(
          { cert: this.#files.cert, key: this.#files.key, code: error instanceof NativeError ? error.code : undefined, error: reason },
          `${reason}; the certificate in use (${this.#current.fingerprint.slice(0, 11)}..., valid to ${this.#current.validTo}) stays until the files are fixed`,
        );
      }
    } finally {
      this.#reading = false;
      if (this.#again) {
        this.#again = false;
        this.#changed();
      }
    }
  }

  /** Stops watching; the server keeps the pair it has. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    for (const watcher of this.#watchers) watcher.close();
    this.#watchers.length = 0;
  }
}
