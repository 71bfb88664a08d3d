/**
 * The small player page the origin serves at `/live/{key}/`: hls.js (or
 * dash.js with `?dash`) from the project's own node_modules, served by the
 * origin under `/_player/`, never from the internet. The page records what
 * the player does in `window.streamsPlayer`, which tests read.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';

/** The player scripts the origin serves, by URL path. */
export const playerScripts: Record<string, string> = {
  '/_player/hls.js': 'hls.js/dist/hls.min.js',
  '/_player/dash.js': 'dashjs',
};

const loaded = new Map<string, Promise<Buffer>>();

/** A player script's bytes, read once from node_modules; undefined for another path. */
export function playerScript(path: string): Promise<Buffer> | undefined {
  const specifier = playerScripts[path];
  if (specifier === undefined) return undefined;
  let bytes = loaded.get(path);
  if (bytes === undefined) {
    // dash.js's package resolves to its UMD build under `require`; hls.js exposes its dist files.
    bytes = readFile(createRequire(import.meta.url).resolve(specifier));
    bytes.catch(() => loaded.delete(path));
    loaded.set(path, bytes);
  }
  return bytes;
}

/**
 * hls.js settings for a stream. With LL-HLS parts: aim at PART-HOLD-BACK
 * (three parts), grow the aim by one part per stall rather than hls.js's
 * default second, and jump back to live past the aim plus a segment:
 * hls.js only speeds playback up within a segment of its aim, so a player
 * that fell further behind (a stall on a busy machine) would otherwise stay
 * seconds late for good. hls.js's own speed-up is off with parts
 * (`maxLiveSyncPlaybackRate: 1`): it needs more than a second buffered
 * ahead, which parts never give, and would reset the page's (see
 * `keepLiveScript`). Measured with bench/glass-to-glass.ts.
 */
export function hlsConfig(settings: { segment: number; part?: number }): Record<string, unknown> {
  const config: Record<string, unknown> = { lowLatencyMode: true, maxLiveSyncPlaybackRate: 1.5 };
  if (settings.part === undefined) return config;
  const holdBack = 3 * settings.part;
  return { ...config, maxLiveSyncPlaybackRate: 1, liveSyncDuration: holdBack, liveMaxLatencyDuration: holdBack + settings.segment, liveSyncOnStallIncrease: settings.part };
}

/**
 * The page's catch-up with LL-HLS parts: every 250 ms, playback runs at
 * 1.1x while hls.js's latency is over its target by more than 100 ms and
 * more than 400 ms is buffered ahead, so a player that fell behind after a
 * stall comes back to its aim instead of staying late; never into an empty
 * buffer (1.25x past half a second late stalled more: a worse p95). A page script may
 * turn it off (`streamsPlayer.keepLive = false`) to measure hls.js alone.
 */
export const keepLiveScript = `setInterval(function keepLive() {
        const hls = state.player;
        if (!hls || state.keepLive === false || video.paused || hls.targetLatency === null) return;
        const late = hls.latency - hls.targetLatency;
        const ahead = video.buffered.length > 0 ? video.buffered.end(video.buffered.length - 1) - video.currentTime : 0;
        const rate = late > 0.1 && ahead > 0.4 ? 1.1 : 1;
        if (video.playbackRate !== rate) video.playbackRate = rate;
      }, 250);`;

/**
 * The page for one stream. `base` is the stream's URL path (`/live/KEY/`);
 * `dash` picks dash.js and the MPD instead of hls.js and the master playlist;
 * `settings` are the stream's segment and part targets (seconds).
 */
export function playerPage(base: string, dash: boolean, settings: { segment: number; part?: number } = { segment: 2 }): string {
  const source = JSON.stringify(base + (dash ? 'manifest.mpd' : 'master.m3u8'));
  const script = dash ? '/_player/dash.js' : '/_player/hls.js';
  const start = dash
    ? `const player = dashjs.MediaPlayer().create();
      state.player = player;
      player.on(dashjs.MediaPlayer.events.ERROR, (e) => { state.errors.push(String(e.error && e.error.message || e.error && e.error.code || 'error')); state.fatal = state.errors.at(-1); });
      player.on(dashjs.MediaPlayer.events.QUALITY_CHANGE_RENDERED, (e) => { if (e.mediaType === 'video') state.level = e.newQuality; });
      player.initialize(video, ${source}, true);`
    : `if (!Hls.isSupported()) { state.fatal = 'MediaSource is not supported'; return; }
      const hls = new Hls(${JSON.stringify(hlsConfig(settings))});
      state.player = hls;
      hls.on(Hls.Events.ERROR, (_, data) => { state.errors.push(data.details); if (data.fatal) state.fatal = data.details; });
      hls.on(Hls.Events.MANIFEST_PARSED, (_, data) => { state.levels = data.levels.map((l) => l.height); });
      hls.on(Hls.Events.LEVEL_SWITCHED, (_, data) => { state.level = data.level; state.switches.push(data.level); });
      hls.loadSource(${source});
      hls.attachMedia(video);${settings.part === undefined ? '' : `\n      ${keepLiveScript}`}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<link rel="icon" href="data:,">
<title>Live stream</title>
<style>body { margin: 0; background: #111; color: #ddd; font: 14px sans-serif; } video { width: 100%; max-height: 90vh; background: #000; } p { margin: 8px; }</style>
</head>
<body>
<video id="video" controls muted autoplay playsinline></video>
<p>${dash ? 'DASH (dash.js)' : 'HLS (hls.js)'} — <a href="${dash ? '?' : '?dash'}">${dash ? 'play HLS' : 'play DASH'}</a></p>
<script src="${script}"></script>
<script>
  (function startPlayer() {
    const video = document.getElementById('video');
    const state = { engine: ${JSON.stringify(dash ? 'dash' : 'hls')}, errors: [], fatal: null, levels: [], level: -1, switches: [] };
    window.streamsPlayer = state;
    ${start}
  })();
</script>
</body>
</html>
`;
}
