/**
 * The settings `objects.put` and `objects.get` share: which store, and how
 * to reach an S3-compatible one. Credentials are taken from the environment
 * (`STREAMS_S3_*`) unless given as `${env:NAME}`; they are never logged.
 */
import { finalize } from 'rxjs';
import { duration, reasonOf, z, type NodeContext, type NodeFunction } from '../../runtime/api.ts';
import { openObjectStore, s3SettingsFromEnv, type S3Settings } from '../../native/s3/client.ts';
import { normalisePrefix } from '../../native/s3/object-key.ts';
import { parseStoreUrl, type ObjectStore } from '../../native/s3/object-store.ts';
import { ObjectExpiry } from './expiry.ts';
import { isInitKey } from './reference.ts';

/** A zod refinement reporting what `check` throws, as the checker shows settings errors. */
function refusing(check: (value: string) => unknown) {
  return function refuseBadValue(value: string, ctx: z.RefinementCtx): void {
    try {
      check(value);
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: (error as Error).message });
    }
  };
}

/** The store fields of both operators' settings. */
export const storeFields = {
  store: z
    .string()
    .min(1)
    .default('objects')
    .superRefine(refusing(parseStoreUrl))
    .meta({ description: 'Where objects go: `s3://bucket/prefix` on an S3-compatible server, or a folder (`file:` URL or path; relative to the pipeline file).', examples: ['s3://media/live', 'objects'] }),
  prefix: z
    .string()
    .default('')
    .superRefine(refusing(normalisePrefix))
    .meta({ description: 'A key prefix below the store\'s own: keys are `STORE_PREFIX/PREFIX/STREAM/TRACK/...`.', examples: ['live/origin/'] }),
  endpoint: z.string().regex(/^https?:\/\//, 'must start with `http://` or `https://`').optional().meta({ description: 'The S3-compatible server; default: `STREAMS_S3_URL` from the environment (absent: AWS).', examples: ['${env:STREAMS_S3_URL}', 'http://127.0.0.1:7070'] }),
  region: z.string().min(1).optional().meta({ description: 'The signing region; default: `STREAMS_S3_REGION`, else `us-east-1`.', examples: ['eu-west-1'] }),
  access_key: z.string().min(1).optional().meta({ description: 'The access key id; give it as `${env:NAME}`. Default: `STREAMS_S3_ACCESS_KEY` from the environment.', examples: ['${env:S3_ACCESS_KEY}'] }),
  secret_key: z.string().min(1).optional().meta({ description: 'The secret key; give it as `${env:NAME}`. Default: `STREAMS_S3_SECRET_KEY` from the environment. Never logged.', examples: ['${env:S3_SECRET_KEY}'] }),
  retain: duration()
    .refine((ms) => ms >= 1_000, 'must be at least `1s`')
    .optional()
    .meta({
      description: 'Delete the objects below `prefix` that are older than this, by a sweep at start (what a previous run left is swept too) and then every quarter of it (1 s to 1 min). Absent: objects are kept for ever. Keep it longer than the DVR window and than an edge may lag behind.',
      examples: ['10m', '1h'],
    }),
};

/** The parsed store fields. */
export interface StoreSettings {
  store: string;
  prefix: string;
  endpoint?: string | undefined;
  region?: string | undefined;
  access_key?: string | undefined;
  secret_key?: string | undefined;
  retain?: number | undefined;
}

/** Opens the store the settings name; a folder store is relative to the pipeline file. */
function openStore(ctx: NodeContext<StoreSettings>): ObjectStore {
  const { store, prefix, endpoint, region, access_key, secret_key } = ctx.settings;
  const s3: S3Settings = { ...s3SettingsFromEnv() };
  if (endpoint !== undefined) s3.endpoint = endpoint;
  if (region !== undefined) s3.region = region;
  if (access_key !== undefined) s3.accessKey = access_key;
  if (secret_key !== undefined) s3.secretKey = secret_key;
  return openObjectStore(store, { s3, base: ctx.resolvePath('.'), prefix });
}

/**
 * A node over the store the settings name: `body` gets a function that
 * opens it on first use (so a store that cannot be opened fails the first
 * batch, not the graph's start), and the store is closed however the node
 * ends. With `retain`, an `ObjectExpiry` sweeps the node's prefix while the
 * node runs, from its start (keeping a live track's init); its counters are
 * the node's metrics.
 */
export function storeNode(ctx: NodeContext<StoreSettings>, body: (store: () => ObjectStore) => NodeFunction): NodeFunction {
  let store: ObjectStore | undefined;
  const open = (): ObjectStore => (store ??= openStore(ctx));
  const node = body(open);
  return function objectStoreNode(input) {
    const expiry = startExpiry(ctx, open);
    return node(input).pipe(
      finalize(function closeStore() {
        // The expiry stops first; a sweep still listing or deleting then fails on the closed store, unreported.
        void expiry?.stop();
        store?.close();
        store = undefined;
      }),
    );
  };
}

/** The sweep `retain` asks for, started; undefined without `retain`. */
function startExpiry(ctx: NodeContext<StoreSettings>, store: () => ObjectStore): ObjectExpiry | undefined {
  const { retain, store: storeUrl, prefix } = ctx.settings;
  if (retain === undefined) return undefined;
  const expiry = new ObjectExpiry({
    store,
    retain,
    now: () => ctx.now(),
    schedule: (ms, fn) => ctx.schedule(ms, fn),
    isInit: isInitKey,
    onError: function reportSweepFailure(error) {
      // The store URL holds no credentials (parseStoreUrl refuses them).
      ctx.log.warn({ store: storeUrl, prefix, retain_ms: retain }, `objects in store \`${storeUrl}\`${prefix ? ` below prefix \`${prefix}\`` : ''} older than \`retain\` not all deleted: ${reasonOf(error)}`);
    },
  });
  ctx.metrics.expose(() => expiry.metrics());
  expiry.start();
  return expiry;
}
