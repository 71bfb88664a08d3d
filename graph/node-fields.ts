/**
 * The one schema of the fields a node carries beside its operator's
 * settings (`parallelism`, `on_error`, `capacity`, `capacity_bytes`,
 * `when_full`, `place`, `description`), of the top-level `hosts:` map (also
 * the shape of a hosts file, `config/hosts.yaml`) and of `transports:`.
 * The checker validates against it, `npm run docs` writes the reference and
 * the editor's JSON Schema from it, and the model's types come from it: a
 * choice such as `when_full`'s is written here and nowhere else.
 */
import { z } from 'zod';
import { requirements } from './operator-spec.ts';
import { duration, size } from './settings.ts';

/** What a full input channel does: pause the upstream, or drop the oldest or newest records. */
export const whenFullPolicies = ['block', 'drop_oldest', 'drop_newest'] as const;
export type WhenFull = (typeof whenFullPolicies)[number];

/** What happens to a record a node cannot process. */
export const onErrorActions = ['dlq', 'drop', 'stop'] as const;
export type OnError = (typeof onErrorActions)[number];

/**
 * Facts for the checker's messages, carried in a field's meta: `expects`
 * says in the author's words what the value must be
 * ("an integer from 1 to 1024"), where zod's own words would not do.
 */
export interface FieldMeta {
  description: string;
  expects?: string;
  /** For a list of choices: what one item is (`capability`), for "unknown capability `ffmpg`". */
  item?: string;
  /** `size` for a size field, whose parse failures say what a size looks like. */
  format?: 'size';
  examples?: unknown[];
}

const labels = z
  .record(z.string(), z.union([z.string(), z.number(), z.boolean()]))
  .meta({ description: 'Labels the host must carry, with these values.', expects: 'a map of label names to values' } satisfies FieldMeta);

/** `place:`: which hosts may run a node; every given field must match the host. */
export const placeSchema = z
  .strictObject({
    host: z.string().optional().meta({ description: 'A host by name, from `hosts:`.', expects: 'a string' } satisfies FieldMeta),
    role: z.string().optional().meta({ description: 'A host role.', expects: 'a string', examples: ['origin', 'edge', 'gpu', 'display'] } satisfies FieldMeta),
    region: z.string().optional().meta({ description: 'A host region.', expects: 'a string', examples: ['eu-west'] } satisfies FieldMeta),
    labels: labels.optional(),
  })
  .meta({
    description: 'Which hosts may run this node: every given field must match the host. Absent, any host that offers what the operator requires.',
    expects: 'a map with `role`, `region`, `host` or `labels`',
  } satisfies FieldMeta);

/** The fields of a node besides `op`, `in` and `with`, each with its default where it has one. */
export const nodeFieldSchemas = {
  place: placeSchema.optional(),
  parallelism: z.int().min(1).max(1024).default(1).meta({
    description: 'How many instances run at once, spread round-robin over the hosts that can run the node; across hosts they form a consumer group. A node that keeps state per key (a window, `dedupe`, `throttle`, an `aggregate` after a window) needs its key, as its input is partitioned by it (see docs/plan.md).',
    expects: 'an integer from 1 to 1024',
  } satisfies FieldMeta),
  on_error: z.enum(onErrorActions).default('dlq').meta({
    description: 'What happens to a record the node cannot process: sent to the `dlq` port, dropped (and counted), or the node stops.',
  } satisfies FieldMeta),
  capacity: z.int().min(1).optional().meta({
    description: 'How many records the node\'s input channel holds before `when_full` applies.',
    expects: 'a positive integer (records)',
  } satisfies FieldMeta),
  capacity_bytes: size()
    .refine((bytes) => bytes > 0, { message: 'must be more than 0' })
    .optional()
    .meta({
      description: 'How many bytes the node\'s input channel holds before `when_full` applies: a size such as `8MiB`, or a byte count.',
      format: 'size',
      examples: ['8MiB'],
    } satisfies FieldMeta),
  when_full: z.enum(whenFullPolicies).default('block').meta({
    description: 'What a full input channel does: pause the upstream, or drop the oldest or newest records (counted).',
  } satisfies FieldMeta),
  description: z.string().optional().meta({ description: 'What this node is for, for people.', expects: 'a string' } satisfies FieldMeta),
} as const;

/** Every key a node may have: the structural three, then the fields above. */
export const nodeKeys: readonly string[] = ['op', 'in', 'with', ...Object.keys(nodeFieldSchemas)];

/** One host under `hosts:`: its role, region, labels, what it offers, and where its worker is. */
export const hostSchema = z
  .strictObject({
    role: z.string().optional().meta({ description: 'What the host is for; `place: {role: ...}` selects on it.', expects: 'a string', examples: ['origin', 'edge', 'gpu', 'display'] } satisfies FieldMeta),
    region: z.string().optional().meta({ description: 'Where the host is; `place: {region: ...}` selects on it.', expects: 'a string', examples: ['eu-west'] } satisfies FieldMeta),
    labels: z
      .record(z.string(), z.union([z.string(), z.number(), z.boolean()]))
      .optional()
      .meta({ description: 'Free-form labels; `place: {labels: ...}` selects on them.', expects: 'a map of label names to values' } satisfies FieldMeta),
    offers: z
      .array(z.enum(requirements as readonly [string, ...string[]]))
      .optional()
      .meta({ description: 'Capabilities the host offers to operators that require them.', expects: 'a list such as `[ffmpeg, gpu]`', item: 'capability' } satisfies FieldMeta),
    listen: z
      .array(z.string())
      .optional()
      .meta({ description: 'Addresses the host\'s listeners bind or are reached at.', expects: 'a list of addresses such as `[10.0.0.2]`', examples: [['10.0.0.2']] } satisfies FieldMeta),
    url: z.string().optional().meta({ description: 'Where the host\'s worker is reached; edges pull media segments from it.', expects: 'a string', examples: ['http://10.0.0.2:7070'] } satisfies FieldMeta),
    description: z.string().optional().meta({ description: 'What this host is, for people.', expects: 'a string' } satisfies FieldMeta),
  })
  .meta({ description: 'A host that runs `streams worker`: its role, region, labels and what it offers.' } satisfies FieldMeta);

/** `hosts:`: the hosts a pipeline may run on, by name. */
export const hostsSchema = z.record(z.string(), hostSchema.nullable()).meta({
  description: 'The hosts this pipeline may run on, by name. Absent, it runs on one local host that offers everything.',
  expects: 'a map of host names to their role, region, labels and offers',
} satisfies FieldMeta);

const reachableFrom = z
  .array(z.string())
  .optional()
  .meta({ description: 'The hosts, by name, that reach this service; absent, every host does.', expects: 'a list of host names', examples: [['origin', 'gpu']] } satisfies FieldMeta);

/** `transports.kafka`: the brokers events cross hosts through, one topic per edge. */
export const kafkaTransportSchema = z
  .strictObject({
    brokers: z
      .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
      .meta({ description: 'Kafka brokers as `host:port`: a list, or one comma-separated string (from `${env:...}`).', expects: 'a non-empty list of `host:port` or a comma-separated string', examples: ['${env:KAFKA_BROKERS}', ['10.0.0.9:9092']] } satisfies FieldMeta),
    partitions: z.int().min(1).max(10_000).optional().meta({
      description: 'The least partitions of a transport topic; a topic into a node with `parallelism: N` has at least N.',
      expects: 'an integer from 1 to 10000',
    } satisfies FieldMeta),
    reachable_from: reachableFrom,
  })
  .meta({ description: 'The Kafka cluster edges between hosts carry events and media packets through.', expects: 'a map with `brokers`' } satisfies FieldMeta);

/** `transports.objects`: the object store media segments cross hosts through. */
export const objectsTransportSchema = z
  .strictObject({
    url: z.string().min(1).meta({ description: 'Where segments are written: `s3://bucket/prefix` (an S3-compatible store) or a folder every host shares.', expects: 'a string', examples: ['s3://media/live', '/srv/streams/objects'] } satisfies FieldMeta),
    retain: duration()
      .refine((ms) => ms >= 1_000)
      .optional()
      .meta({
        description: 'Delete segments older than this: the `objects.put` of each segment edge sweeps its prefix (`retain` of `objects.put`). Absent: segments are kept for ever. Keep it longer than the DVR window and than an edge may lag behind.',
        expects: 'a duration of at least `1s`, such as `10m`',
        examples: ['10m', '1h'],
      } satisfies FieldMeta),
    reachable_from: reachableFrom,
  })
  .meta({ description: 'The object store an origin writes segments to and edges pull them through.', expects: 'a map with `url`' } satisfies FieldMeta);

/** `transports:`: the shared services edges that cross hosts run through. */
export const transportsSchema = z
  .strictObject({ kafka: kafkaTransportSchema.optional(), objects: objectsTransportSchema.optional() })
  .meta({ description: 'The services edges between hosts run through: `kafka` for events and media packets, `objects` for media segments.', expects: 'a map with `kafka` or `objects`' } satisfies FieldMeta);

/** The meta of a field schema, looked through `optional`/`default` wrappers. */
export function fieldMeta(schema: z.ZodType): FieldMeta {
  return (schema.meta() ?? {}) as unknown as FieldMeta;
}
