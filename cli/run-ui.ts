/**
 * What `streams run` needs whether or not `--ui` is on: the `--ui` options,
 * checked, and the one reload path that both `--watch` and
 * `POST /api/reload` take (checked first, applied one at a time, recorded
 * in the reload history). The admin server itself is in `run-ui-server.ts`,
 * loaded only when `--ui` is given.
 */
import { performance } from 'node:perf_hooks';
import type { Diagnostic } from '../graph/diagnostics.ts';
import type { Engine } from '../runtime/engine.ts';
import { resolve } from 'node:path';
import type { Logger } from '../runtime/types.ts';
import { parseListen, type ListenAddress } from '../native/http/listen.ts';
import type { TlsFiles } from '../native/http/server.ts';
import { exposureProblem } from '../runtime/server/http-kit.ts';
import type { LiveFeed } from '../runtime/server/live-feed.ts';
import type { ReloadRecord } from '../runtime/server/protocol.ts';
import { UsageError, checkPipelineTextLoaded } from './pipeline-file.ts';

/** The admin server's options from the command line. */
export interface UiOptions {
  listen: ListenAddress;
  token?: string;
  /** `--ui-tls-cert` and `--ui-tls-key`, made absolute against the current directory. */
  tls?: TlsFiles;
}

/** `--ui`, `--ui-token` (or `STREAMS_UI_TOKEN`), `--ui-tls-cert` and `--ui-tls-key`, checked; undefined without `--ui`. */
export function uiOptions(values: Record<string, unknown>, env: NodeJS.ProcessEnv): UiOptions | undefined {
  const cert = values['ui-tls-cert'] === undefined ? undefined : String(values['ui-tls-cert']);
  const key = values['ui-tls-key'] === undefined ? undefined : String(values['ui-tls-key']);
  if ((cert === undefined) !== (key === undefined)) throw new UsageError(cert === undefined ? '--ui-tls-key needs --ui-tls-cert' : '--ui-tls-cert needs --ui-tls-key');
  if (values.ui === undefined) {
    if (cert !== undefined) throw new UsageError('--ui-tls-cert and --ui-tls-key need --ui HOST:PORT');
    return undefined;
  }
  const listen = parseListen(String(values.ui));
  if (typeof listen === 'string') throw new UsageError(`--ui: ${listen}`);
  const given = values['ui-token'] !== undefined ? String(values['ui-token']) : env.STREAMS_UI_TOKEN;
  const token = given === undefined || given === '' ? undefined : given;
  // TLS protects the token on the wire; it does not replace it: a non-loopback address still needs one.
  const problem = exposureProblem('--ui', listen.host, token);
  if (problem) throw new UsageError(problem);
  return { listen, ...(token ? { token } : {}), ...(cert !== undefined && key !== undefined ? { tls: { cert: resolve(cert), key: resolve(key) } } : {}) };
}

/** Applies pipeline texts to a running engine, one at a time, and remembers what happened. */
export class Reloader {
  #queue: Promise<unknown> = Promise.resolve();
  feed: LiveFeed | undefined;
  readonly #engine: Engine;
  readonly #file: string;
  readonly #params: Record<string, unknown>;
  readonly #log: Logger;

  constructor(engine: Engine, file: string, params: Record<string, unknown>, log: Logger) {
    this.#engine = engine;
    this.#file = file;
    this.#params = params;
    this.#log = log;
  }

  /** Checks `text`; when valid, reloads the engine with it. Never throws for a bad pipeline: the record says why. */
  apply(text: string, via: 'api' | 'watch', onDiagnostics?: (diagnostics: Diagnostic[]) => void): Promise<ReloadRecord> {
    const run = this.#queue.then(() => this.#apply(text, via, onDiagnostics));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #apply(text: string, via: 'api' | 'watch', onDiagnostics?: (diagnostics: Diagnostic[]) => void): Promise<ReloadRecord> {
    const started = performance.now();
    const time = Date.now();
    const took = (): number => Math.round((performance.now() - started) * 10) / 10;
    // A new version may name operators the running one does not: they are loaded first.
    const checked = await checkPipelineTextLoaded(this.#file, text, this.#params);
    onDiagnostics?.(checked.diagnostics);
    let record: ReloadRecord;
    if (!checked.graph) {
      this.#log.warn({ file: this.#file, via }, 'reload rejected: the running graph is unchanged');
      record = { status: 'rejected', time, took_ms: took(), diagnostics: checked.diagnostics, via };
    } else {
      const result = await this.#engine.reload(checked.graph);
      if (result.status === 'applied') {
        const { kept, replaced, added, removed } = result.diff;
        this.#log.info({ kept: kept.length, replaced, added, removed, via }, 'reload applied');
        record = { status: 'applied', time, took_ms: took(), diff: result.diff, via, ...(result.warnings && { warnings: result.warnings }) };
      } else {
        this.#log.error({ cause: result.cause, via }, result.status === 'rejected' ? 'reload rejected: the running graph is unchanged' : 'reload rolled back: the old nodes run again');
        record = { status: result.status, time, took_ms: took(), diagnostics: checked.diagnostics, cause: result.cause, diff: result.diff, via };
      }
    }
    this.feed?.recordReload(record);
    return record;
  }
}
