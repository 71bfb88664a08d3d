/**
 * The reference record `objects.put` emits for each CMAF item it stores and
 * `objects.get` turns back into the item: everything of the item but its
 * bytes, plus where the bytes are (`key`, `size`, `etag`, `content_type`).
 * References are small JSON objects, so they cross hosts through a Kafka
 * topic while the bytes go through the object store.
 */
import { createHash } from 'node:crypto';
import { z } from '../../runtime/api.ts';
import type { CmafItem } from '../../media/segment.ts';
import type { TrackInfo } from '../../media/packet.ts';

/** The port type of references, as both operators declare it. */
export const referencePortType = 'Event<{type: string, stream: string, key: string, size: number, etag: string, content_type: string}>';

/** What a stored object is, besides the item it carries. */
interface Stored {
  key: string;
  size: number;
  etag: string;
  content_type: string;
}

const base = { stream: z.string().min(1), track: z.string().min(1), rendition: z.string().min(1) };
const stored = { key: z.string().min(1), size: z.number().int().nonnegative(), etag: z.string(), content_type: z.string() };

const trackInfo = z.looseObject({
  kind: z.enum(['video', 'audio']),
  codec: z.string(),
  codecString: z.string(),
  timescale: z.number().positive(),
  /** The decoder configuration, base64: JSON has no bytes. */
  config: z.string(),
});

/** A reference as it must arrive; anything else goes to the dead-letter port. */
export const referenceSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('init'), ...base, ...stored, info: trackInfo, playlist: z.looseObject({ segment: z.number(), window: z.number() }), epoch: z.string().optional() }),
  z.object({ type: z.literal('part'), ...base, ...stored, msn: z.number().int().nonnegative(), part: z.number().int().nonnegative(), duration: z.number(), independent: z.boolean(), closed_at: z.number().optional(), discontinuity: z.boolean().optional() }),
  z.object({ type: z.literal('segment'), ...base, ...stored, msn: z.number().int().nonnegative(), duration: z.number(), program_date_time: z.number(), start_time: z.number(), discontinuity: z.boolean(), closed_at: z.number().optional() }),
  z.object({ type: z.literal('end'), stream: z.string().min(1), track: z.string().min(1).optional(), key: z.literal('').default(''), size: z.literal(0).default(0), etag: z.literal('').default(''), content_type: z.literal('').default('') }),
]);

/** A reference record. */
export type ObjectReference = z.output<typeof referenceSchema>;

/** A short content hash for keys that must differ whenever the bytes do. */
function contentHash(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex').slice(0, 12);
}

/**
 * The key of an item's object below the store's prefix, after the origin's
 * URLs: `STREAM/TRACK/init-EPOCH-HASH.mp4`, `STREAM/TRACK/EPOCH-MSN.m4s`,
 * `STREAM/TRACK/EPOCH-MSN.PART.m4s`. Stream and track names are
 * percent-encoded, so a `/` in them cannot make a folder. `epoch` is the
 * track's last init's; without one (a writer restarted mid-track) the key
 * carries a hash of the bytes instead, so two contents never share a key.
 */
/** Whether a key is an init segment's (`STREAM/TRACK/init-....mp4`), which a track's later objects need. */
export function isInitKey(key: string): boolean {
  return /(^|\/)init-[^/]*\.mp4$/.test(key);
}

export function keyFor(item: Exclude<CmafItem, { type: 'end' }>, epoch: string | undefined): string {
  const folder = `${encodeURIComponent(item.stream)}/${encodeURIComponent(item.track)}`;
  if (item.type === 'init') return `${folder}/init-${item.epoch ?? epoch ?? 'x'}-${contentHash(item.data)}.mp4`;
  const name = epoch === undefined ? `${item.msn}-${contentHash(item.data)}` : `${epoch}-${item.msn}`;
  return item.type === 'part' ? `${folder}/${name}.${item.part}.m4s` : `${folder}/${name}.m4s`;
}

/** The reference of an item stored as `object`. */
export function referenceOf(item: CmafItem, object: Stored | undefined): ObjectReference {
  if (item.type === 'end') return { type: 'end', stream: item.stream, ...(item.track !== undefined && { track: item.track }), key: '', size: 0, etag: '', content_type: '' };
  const where = { stream: item.stream, track: item.track, rendition: item.rendition, ...object! };
  switch (item.type) {
    case 'init':
      return { type: 'init', ...where, info: { ...item.info, config: item.info.config.toString('base64') }, playlist: { ...item.playlist }, ...(item.epoch !== undefined && { epoch: item.epoch }) };
    case 'part':
      return { type: 'part', ...where, msn: item.msn, part: item.part, duration: item.duration, independent: item.independent, ...(item.closedAt !== undefined && { closed_at: item.closedAt }), ...(item.discontinuity !== undefined && { discontinuity: item.discontinuity }) };
    case 'segment':
      return { type: 'segment', ...where, msn: item.msn, duration: item.duration, program_date_time: item.programDateTime, start_time: item.startTime, discontinuity: item.discontinuity, ...(item.closedAt !== undefined && { closed_at: item.closedAt }) };
  }
}

/** The CMAF item a reference stands for, with its bytes fetched. */
export function itemOf(reference: ObjectReference, data: Buffer): CmafItem {
  switch (reference.type) {
    case 'end':
      return { type: 'end', stream: reference.stream, ...(reference.track !== undefined && { track: reference.track }) };
    case 'init': {
      const info = { ...reference.info, config: Buffer.from(reference.info.config, 'base64') } as unknown as TrackInfo;
      return { type: 'init', stream: reference.stream, track: reference.track, rendition: reference.rendition, info, data, playlist: reference.playlist as never, ...(reference.epoch !== undefined && { epoch: reference.epoch }) };
    }
    case 'part':
      return { type: 'part', stream: reference.stream, track: reference.track, rendition: reference.rendition, msn: reference.msn, part: reference.part, duration: reference.duration, independent: reference.independent, data, ...(reference.closed_at !== undefined && { closedAt: reference.closed_at }), ...(reference.discontinuity !== undefined && { discontinuity: reference.discontinuity }) };
    case 'segment':
      return { type: 'segment', stream: reference.stream, track: reference.track, rendition: reference.rendition, msn: reference.msn, duration: reference.duration, programDateTime: reference.program_date_time, startTime: reference.start_time, discontinuity: reference.discontinuity, data, ...(reference.closed_at !== undefined && { closedAt: reference.closed_at }) };
  }
}
