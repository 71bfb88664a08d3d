/**
 * The packager of one live stream: one `TrackPackager` per rendition and
 * kind, their names, the wall-clock anchor they share, the alignment of
 * audio segments to video keyframes, and the stream's end.
 *
 * Track names, unique within the stream:
 * - video: the rendition's name (`source`, `720p`);
 * - audio: `audio` for the first rendition whose audio arrives, then
 *   `<rendition>-audio` for every other rendition carrying audio;
 * - a name already taken (a video rendition called `audio`) becomes
 *   `<rendition>-<kind>`, then gets `-2`, `-3`… until unique.
 */
import type { MediaPacket } from '../../../media/packet.ts';
import type { CmafItem, PlaylistSettings } from '../../../media/segment.ts';
import { TrackPackager, type ClockAnchor, type CutSettings, type TrackHost } from './track-packager.ts';
import { StreamStats } from './stream-stats.ts';

/** Re-anchors of tracks within this long of each other (ms) share the stream's new anchor. */
const reanchorWindow = 1000;

/** What a stream's packager hands its successor on a reload: its tracks' names and next sequence numbers. */
export interface StreamHandover {
  /** The publish's epoch (`CmafInit.epoch`): the successor goes on under it. */
  epoch?: string;
  tracks: { rendition: string; kind: 'video' | 'audio'; track: string; nextMsn: number }[];
}

/** Packages one stream's packets; `emit` receives every item in order. */
export class StreamPackager implements TrackHost {
  readonly stream: string;
  /** The publish's epoch, stamped on every init (`CmafInit.epoch`). */
  readonly epoch: string;
  readonly stats = new StreamStats();
  #settings: CutSettings;
  #playlist: PlaylistSettings;
  #emit: (item: CmafItem) => void;
  /** Tracks by `rendition/kind`. */
  #tracks = new Map<string, TrackPackager>();
  #names = new Set<string>();
  #audioNamed = false;
  #anchor: ClockAnchor | undefined;
  #anchoredAt = -Infinity;
  /** Segments and parts emitted so far, for stats. */
  readonly totals = { segments: 0, parts: 0 };

  /** Tracks a predecessor left: their names and numbering carry over, after a discontinuity. */
  #handedOver = new Map<string, { track: string; nextMsn: number }>();

  constructor(stream: string, epoch: string, settings: CutSettings, playlist: PlaylistSettings, emit: (item: CmafItem) => void, restored?: StreamHandover) {
    this.stream = stream;
    this.epoch = restored?.epoch ?? epoch;
    this.#settings = settings;
    this.#playlist = playlist;
    this.#emit = emit;
    for (const track of restored?.tracks ?? []) {
      this.#handedOver.set(`${track.rendition}/${track.kind}`, { track: track.track, nextMsn: track.nextMsn });
      this.#names.add(track.track);
      if (track.kind === 'audio') this.#audioNamed = true;
    }
  }

  /** The stream's tracks, in the order they appeared. */
  get tracks(): TrackPackager[] {
    return [...this.#tracks.values()];
  }

  /** Takes one packet of the stream. */
  push(packet: MediaPacket, arrival: number): void {
    const key = `${packet.rendition}/${packet.track.kind}`;
    let track = this.#tracks.get(key);
    if (track === undefined) {
      const previous = this.#handedOver.get(key);
      track = new TrackPackager({
        stream: this.stream,
        track: previous?.track ?? this.#nameFor(packet.rendition, packet.track.kind),
        continueAt: previous?.nextMsn,
        rendition: packet.rendition,
        kind: packet.track.kind,
        settings: this.#settings,
        playlist: this.#playlist,
        host: this,
      });
      this.#tracks.set(key, track);
    }
    this.stats.count(packet, track === (this.#firstVideo() ?? this.#tracks.values().next().value));
    track.push(packet, arrival);
  }

  /** Ends one rendition's tracks (or all of them): flushes their open segments and emits their `end` items, then the stream's when all ended. */
  end(closedAt: number, rendition?: string): void {
    for (const [key, track] of this.#tracks) {
      if (rendition !== undefined && track.rendition !== rendition) continue;
      track.flush(closedAt);
      this.#emit({ type: 'end', stream: this.stream, track: track.track });
      this.#tracks.delete(key);
    }
    if (this.#tracks.size === 0) this.#emit({ type: 'end', stream: this.stream });
  }

  /** Allocates what the tracks' open segments will be written into, off the path from a packet to its item. */
  prepare(): void {
    for (const track of this.#tracks.values()) track.prepare();
  }

  /** Closes every track's open segment and marks the next ones discontinuous: the publisher left, and may reconnect. */
  suspend(closedAt: number): void {
    for (const track of this.#tracks.values()) track.suspend(closedAt);
  }

  /** Closes every track's open segment without ending the stream (a reload: the successor goes on). */
  flush(closedAt: number): void {
    for (const track of this.#tracks.values()) track.flush(closedAt);
  }

  /** The tracks' names and next sequence numbers, for a successor. */
  handover(): StreamHandover {
    const tracks = [...this.#tracks.values()].map((track) => ({ rendition: track.rendition, kind: track.kind, track: track.track, nextMsn: track.nextMsn }));
    for (const [key, previous] of this.#handedOver) {
      const [rendition, kind] = key.split('/') as [string, 'video' | 'audio'];
      if (!this.#tracks.has(key)) tracks.push({ rendition, kind, ...previous });
    }
    return { epoch: this.epoch, tracks };
  }

  /** Whether every track has ended. */
  get ended(): boolean {
    return this.#tracks.size === 0;
  }

  emit(item: CmafItem): void {
    if (item.type === 'segment') this.totals.segments += 1;
    else if (item.type === 'part') this.totals.parts += 1;
    this.#emit(item.type === 'init' ? { ...item, epoch: this.epoch } : item);
  }

  anchor(time: number, arrival: number, discontinuity: boolean): ClockAnchor {
    // After a discontinuity the timeline restarted: the first track to see it re-anchors, the others follow within a second.
    if (this.#anchor === undefined || (discontinuity && arrival - this.#anchoredAt > reanchorWindow)) {
      this.#anchor = { wall: arrival, time };
      this.#anchoredAt = arrival;
    }
    return this.#anchor;
  }

  boundary(video: TrackPackager, time: number, discontinuity: boolean): void {
    const leader = this.#firstVideo();
    for (const track of this.#tracks.values()) {
      if (track.kind !== 'audio') continue;
      const own = this.#tracks.get(`${track.rendition}/video`);
      if (own === video || (own === undefined && video === leader)) track.follow(time, discontinuity);
    }
  }

  follows(track: TrackPackager): boolean {
    return this.#tracks.has(`${track.rendition}/video`) || this.#firstVideo() !== undefined;
  }

  leaderMsn(track: TrackPackager): number | undefined {
    return (this.#tracks.get(`${track.rendition}/video`) ?? this.#firstVideo())?.openMsn;
  }

  #firstVideo(): TrackPackager | undefined {
    for (const track of this.#tracks.values()) if (track.kind === 'video') return track;
    return undefined;
  }

  #nameFor(rendition: string, kind: 'video' | 'audio'): string {
    let name = kind === 'video' ? rendition : this.#audioNamed ? `${rendition}-audio` : 'audio';
    if (kind === 'audio') this.#audioNamed = true;
    if (this.#names.has(name)) name = `${rendition}-${kind}`;
    for (let n = 2; this.#names.has(name); n++) name = `${rendition}-${kind}-${n}`;
    this.#names.add(name);
    return name;
  }
}
