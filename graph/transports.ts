/**
 * `transports:`: the shared services that edges crossing hosts run through,
 * read from a pipeline or a hosts file and checked against
 * `transportsSchema`. The planner decides which edges need them.
 */
import { checkFields } from './check-fields.ts';
import { suggest } from './diagnostics.ts';
import type { Transports } from './model.ts';
import { fieldMeta, kafkaTransportSchema, objectsTransportSchema, transportsSchema } from './node-fields.ts';
import { located } from './placement.ts';
import { isRecord, kindOf, type Reporter } from './reporter.ts';

/** Reads `transports:` (absent: none declared); every problem is reported at its place. */
export function parseTransports(raw: unknown, report: Reporter): Transports {
  if (raw === undefined || raw === null) return {};
  if (!isRecord(raw)) {
    report.value(['transports'], 'bad_field', `\`transports\` must be ${fieldMeta(transportsSchema).expects}, found ${kindOf(raw)}`);
    return {};
  }
  const known = { kafka: kafkaTransportSchema, objects: objectsTransportSchema };
  const transports: Transports = {};
  for (const [key, value] of Object.entries(raw)) {
    const path = ['transports', key];
    if (!Object.hasOwn(known, key)) {
      report.key(path, 'unknown_field', `unknown transport \`${key}\``, suggest(key, Object.keys(known)) ?? 'transports are `kafka` and `objects`');
      continue;
    }
    const schema = known[key as keyof typeof known];
    if (!isRecord(value)) {
      report.value(path, 'bad_field', `\`transports.${key}\` must be ${fieldMeta(schema).expects}, found ${kindOf(value)}`);
      continue;
    }
    const words = { field: (k: string) => `\`${k}\` of \`transports.${key}\``, unknown: (k: string) => `unknown field \`${k}\` in \`transports.${key}\`` };
    const spec = checkFields(schema, value, path, words, report);
    const required = key === 'kafka' ? 'brokers' : 'url';
    if (value[required] === undefined) report.key(path, 'missing_field', `\`transports.${key}\` needs \`${required}\``);
    if (spec[required] === undefined) continue;
    const endpoint = {
      at: located(report, path, 'key'),
      ...(spec.reachable_from !== undefined && { reachableFrom: spec.reachable_from as string[], reachableAt: located(report, [...path, 'reachable_from'], 'value') }),
    };
    if (key === 'kafka') {
      const brokers = typeof spec.brokers === 'string' ? spec.brokers.split(',').map((b) => b.trim()).filter(Boolean) : (spec.brokers as string[]);
      transports.kafka = { ...endpoint, brokers, ...(spec.partitions !== undefined && { partitions: spec.partitions as number }) };
    } else {
      transports.objects = { ...endpoint, url: spec.url as string, ...(spec.retain !== undefined && { retain: value.retain as string }) };
    }
  }
  return transports;
}
