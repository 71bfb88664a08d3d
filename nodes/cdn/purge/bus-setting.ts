/**
 * The settings that name a purge bus, shared by `cdn.purge` (which sends)
 * and `cache` (whose edge listens): a Redis URL or Kafka brokers, and the
 * channel.
 */
import { z } from '../../../runtime/api.ts';
import { defaultPurgeChannel, type PurgeBusOptions } from './bus.ts';

/** The fields of a bus: exactly one of `redis` and `brokers` (checked by {@link oneBus}), and `channel`. */
export const purgeBusShape = {
  redis: z.string().regex(/^rediss?:\/\//, 'must start with `redis://` or `rediss://`').optional().meta({ description: 'The purge bus is Redis pub/sub on this server; put a password in `${env:...}`. Give this or `brokers`.', examples: ['redis://127.0.0.1:6379'] }),
  brokers: z.array(z.string().min(1)).min(1).optional().meta({ description: 'The purge bus is Kafka on these brokers. Give this or `redis`.', examples: [['127.0.0.1:9092']] }),
  channel: z.string().regex(/^[A-Za-z0-9._:-]{1,200}$/, 'use letters, digits, `.`, `_`, `:` or `-`').default(defaultPurgeChannel).meta({ description: 'The purge channel the edges listen on (on Kafka, the topic with `:` as `.`).', examples: ['streams:cdn:purge'] }),
};

/** A `superRefine` check: exactly one of `redis` and `brokers`. */
export function oneBus(value: { redis?: string; brokers?: string[] }, issues: z.RefinementCtx): void {
  if ((value.redis === undefined) === (value.brokers === undefined)) {
    issues.addIssue({ code: 'custom', path: ['redis'], message: 'give exactly one of `redis` (a URL) and `brokers` (Kafka)', params: { code: 'bad_setting' } });
  }
}

/** The bus options the purge code takes, from the settings. */
export function busOptions(settings: { redis?: string; brokers?: string[]; channel: string }): PurgeBusOptions {
  return settings.redis !== undefined ? { redis: settings.redis, channel: settings.channel } : { kafka: settings.brokers, channel: settings.channel };
}
