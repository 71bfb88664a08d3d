/**
 * The operator registry: every operator's name and the module it lives in,
 * one line each. An operator's module (its settings schema, its connector
 * code) is evaluated only when a pipeline names it: the CLI reads the names
 * a pipeline's text gives (`operatorsNamedIn`), awaits
 * {@link loadOperators}, then checks synchronously against {@link registry}.
 * `streams ops`, the generated docs and the editor schema load every
 * operator ({@link loadAllOperators}, or `nodes/all.ts`). A test checks that
 * every file under `nodes/` is listed here under its definition's name.
 */
import type { OperatorDefinition } from '../runtime/api.ts';
import type { Registry } from '../graph/operator-spec.ts';

/** Each operator's module, by the operator's name: `import()`ed on first use, so the bundle keeps each in its own chunk. */
export const operatorModules: Readonly<Record<string, () => Promise<{ default: OperatorDefinition }>>> = {
  generate: () => import('./events/generate.ts'),
  'file.read': () => import('./io/file-read.ts'),
  'file.write': () => import('./io/file-write.ts'),
  stdout: () => import('./io/stdout.ts'),
  'decode.json': () => import('./events/decode-json.ts'),
  'encode.json': () => import('./events/encode-json.ts'),
  map: () => import('./events/map.ts'),
  filter: () => import('./events/filter.ts'),
  'window.tumbling': () => import('./events/window-tumbling.ts'),
  'window.sliding': () => import('./events/window-sliding.ts'),
  'window.session': () => import('./events/window-session.ts'),
  aggregate: () => import('./events/aggregate.ts'),
  dedupe: () => import('./events/dedupe.ts'),
  throttle: () => import('./events/throttle.ts'),
  'ws.server': () => import('./io/ws-server.ts'),
  'ws.client': () => import('./io/ws-client.ts'),
  'sse.server': () => import('./io/sse-server.ts'),
  'http.server': () => import('./io/http-server.ts'),
  'http.request': () => import('./io/http-request.ts'),
  'redis.stream': () => import('./messaging/redis-stream.ts'),
  'redis.write': () => import('./messaging/redis-write.ts'),
  'redis.subscribe': () => import('./messaging/redis-subscribe.ts'),
  'pg.write': () => import('./io/pg-write.ts'),
  'pg.query': () => import('./io/pg-query.ts'),
  'kafka.consume': () => import('./messaging/kafka-consume.ts'),
  'kafka.produce': () => import('./messaging/kafka-produce.ts'),
  'mqtt.subscribe': () => import('./messaging/mqtt-subscribe.ts'),
  'mqtt.publish': () => import('./messaging/mqtt-publish.ts'),
  'mqtt.broker': () => import('./messaging/mqtt-broker.ts'),
  'ingest.rtmp': () => import('./media/ingest-rtmp.ts'),
  demux: () => import('./media/demux.ts'),
  'serve.http': () => import('./media/serve-http.ts'),
  'serve.files': () => import('./cdn/serve-files.ts'),
  'segment.hls': () => import('./media/segment-hls.ts'),
  'segment.dash': () => import('./media/segment-dash.ts'),
  encode: () => import('./media/encode.ts'),
  'ingest.srt': () => import('./media/ingest-srt.ts'),
  'cdn.purge': () => import('./cdn/purge.ts'),
  cache: () => import('./cdn/cache.ts'),
  'objects.put': () => import('./objects/put.ts'),
  'objects.get': () => import('./objects/get.ts'),
  'media.pack': () => import('./media/media-pack.ts'),
  'media.unpack': () => import('./media/media-unpack.ts'),
};

/** Every operator's name, in the table's order, whether loaded or not. */
export const operatorNames: readonly string[] = Object.keys(operatorModules);

const loaded = new Map<string, OperatorDefinition>();

/**
 * The operators loaded so far, by name: what the checker and the engine
 * look operators up in. It grows as {@link loadOperators} loads more, so an
 * engine holding it sees the operators a reloaded version adds.
 */
export const registry: ReadonlyMap<string, OperatorDefinition> & Registry = loaded;

/**
 * Loads the operators `names` names, in parallel, into {@link registry}.
 * A name that is no operator's (a typo, or a `${...}` reference the checker
 * resolves later) loads every operator instead, so that the checker's
 * `unknown_operator` diagnostic and its suggestion, or the resolved name,
 * see them all.
 *
 * @example await loadOperators(['generate', 'stdout']); checkPipeline({ file, text, registry })
 */
export async function loadOperators(names: Iterable<string>): Promise<typeof registry> {
  const wanted = new Set(names);
  if ([...wanted].some((name) => !Object.hasOwn(operatorModules, name))) return loadAllOperators();
  await Promise.all([...wanted].filter((name) => !loaded.has(name)).map((name) => loadOne(name)));
  return registry;
}

/** Loads every operator into {@link registry} (for listings: `streams ops`, the docs, the editor schema, workers). */
export async function loadAllOperators(): Promise<typeof registry> {
  await Promise.all(operatorNames.filter((name) => !loaded.has(name)).map((name) => loadOne(name)));
  // In the table's order, whatever order the imports settled in (listings and tests iterate it).
  const all = operatorNames.map((name) => [name, loaded.get(name)!] as const);
  loaded.clear();
  for (const [name, definition] of all) loaded.set(name, definition);
  return registry;
}

async function loadOne(name: string): Promise<void> {
  const { default: definition } = await operatorModules[name]();
  // The table's name and the definition's must agree, or the checker would know the operator under two names.
  if (definition.name !== name) throw new Error(`nodes/registry.ts lists \`${name}\` for the module of \`${definition.name}\``);
  loaded.set(name, definition);
}
