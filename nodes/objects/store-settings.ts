/**
 * The settings `objects.put` and `objects.get` share: which store, and how
 * to reach an S3-compatible one. Credentials are taken from the environment
 * (`STREAMS_S3_*`) unless given as `${env:NAME}`; they are never logged.
 */
import { z, type NodeContext } from '../../runtime/api.ts';
import { openObjectStore, s3SettingsFromEnv, type S3Settings } from '../../native/s3/client.ts';
import { normalisePrefix } from '../../native/s3/object-key.ts';
import { parseStoreUrl, type ObjectStore } from '../../native/s3/object-store.ts';

function storeProblem(url: string): string | undefined {
  try {
    parseStoreUrl(url);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

function prefixProblem(prefix: string): string | undefined {
  try {
    normalisePrefix(prefix);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/** The store fields of both operators' settings. */
export const storeFields = {
  store: z
    .string()
    .min(1)
    .default('objects')
    .superRefine((url, ctx) => {
      const problem = storeProblem(url);
      if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
    })
    .meta({ description: 'Where objects go: `s3://bucket/prefix` on an S3-compatible server, or a folder (`file:` URL or path; relative to the pipeline file).', examples: ['s3://media/live', 'objects'] }),
  prefix: z
    .string()
    .default('')
    .superRefine((prefix, ctx) => {
      const problem = prefixProblem(prefix);
      if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
    })
    .meta({ description: 'A key prefix below the store\'s own: keys are `STORE_PREFIX/PREFIX/STREAM/TRACK/...`.', examples: ['live/origin/'] }),
  endpoint: z.string().regex(/^https?:\/\//, 'must start with `http://` or `https://`').optional().meta({ description: 'The S3-compatible server; default: `STREAMS_S3_URL` from the environment (absent: AWS).', examples: ['${env:STREAMS_S3_URL}', 'http://127.0.0.1:7070'] }),
  region: z.string().min(1).optional().meta({ description: 'The signing region; default: `STREAMS_S3_REGION`, else `us-east-1`.', examples: ['eu-west-1'] }),
  access_key: z.string().min(1).optional().meta({ description: 'The access key id; give it as `${env:NAME}`. Default: `STREAMS_S3_ACCESS_KEY` from the environment.', examples: ['${env:S3_ACCESS_KEY}'] }),
  secret_key: z.string().min(1).optional().meta({ description: 'The secret key; give it as `${env:NAME}`. Default: `STREAMS_S3_SECRET_KEY` from the environment. Never logged.', examples: ['${env:S3_SECRET_KEY}'] }),
};

/** The parsed store fields. */
export interface StoreSettings {
  store: string;
  prefix: string;
  endpoint?: string | undefined;
  region?: string | undefined;
  access_key?: string | undefined;
  secret_key?: string | undefined;
}

/** Opens the store the settings name; a folder store is relative to the pipeline file. */
export function openStore(ctx: NodeContext<StoreSettings>): ObjectStore {
  const { store, prefix, endpoint, region, access_key, secret_key } = ctx.settings;
  const s3: S3Settings = { ...s3SettingsFromEnv() };
  if (endpoint !== undefined) s3.endpoint = endpoint;
  if (region !== undefined) s3.region = region;
  if (access_key !== undefined) s3.accessKey = access_key;
  if (secret_key !== undefined) s3.secretKey = secret_key;
  return openObjectStore(store, { s3, base: ctx.resolvePath('.'), prefix });
}
