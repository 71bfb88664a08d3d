/**
 * A real browser for media tests: Debian's Chromium driven by
 * playwright-core, with autoplay allowed. Pages must come from
 * http://127.0.0.1 (MediaSource is refused on `data:` URLs). A player page
 * served by `serve.http` records its state in `window.streamsPlayer`;
 * `playerState` reads it with the video element's.
 */
import { chromium, type Browser, type Page } from 'playwright-core';

/** What a player page shows at one instant. */
export interface PlayerState {
  currentTime: number;
  paused: boolean;
  readyState: number;
  /** Seconds buffered ahead of `currentTime`. */
  bufferedAhead: number;
  videoWidth: number;
  videoHeight: number;
  /** From `window.streamsPlayer`: the player's errors, the fatal one, levels and switches. */
  engine?: string;
  errors: string[];
  fatal: string | null;
  levels: number[];
  level: number;
  switches: number[];
}

/** A launched browser; `close` ends it (call it in `afterAll`). */
export interface TestBrowser {
  browser: Browser;
  /** Opens `url` in a new page; the URL of every request the page makes is appended to `requests` when given. */
  open(url: string, requests?: string[]): Promise<Page>;
  close(): Promise<void>;
}

/** Launches Chromium headless with autoplay allowed; `log` receives the pages' console lines. */
export async function launchBrowser(options: { log?: (line: string) => void } = {}): Promise<TestBrowser> {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--autoplay-policy=no-user-gesture-required'] });
  return {
    browser,
    async open(url, requests) {
      const page = await browser.newPage();
      if (requests) page.on('request', (request) => requests.push(request.url()));
      if (options.log) {
        const log = options.log;
        page.on('console', (message) => log(`${message.type()}: ${message.text()}`));
        page.on('pageerror', (error) => log(`pageerror: ${error.message}`));
      }
      await page.goto(url);
      return page;
    },
    close: () => browser.close(),
  };
}

/** What `playerState` reads in the page (the project compiles without the DOM library). */
interface PageGlobals {
  document: {
    querySelector(selector: 'video'): {
      currentTime: number;
      paused: boolean;
      readyState: number;
      videoWidth: number;
      videoHeight: number;
      buffered: { length: number; start(index: number): number; end(index: number): number };
    } | null;
  };
  streamsPlayer?: { engine: string; errors: string[]; fatal: string | null; levels: number[]; level: number; switches: number[] };
}

/** The page's video element and player state. */
export function playerState(page: Page): Promise<PlayerState> {
  return page.evaluate(function readPlayerState() {
    const page = globalThis as unknown as PageGlobals;
    const video = page.document.querySelector('video')!;
    let bufferedAhead = 0;
    for (let i = 0; i < video.buffered.length; i++) {
      if (video.buffered.start(i) <= video.currentTime + 0.1 && video.buffered.end(i) > video.currentTime) bufferedAhead = video.buffered.end(i) - video.currentTime;
    }
    const player = page.streamsPlayer;
    return {
      currentTime: video.currentTime,
      paused: video.paused,
      readyState: video.readyState,
      bufferedAhead,
      videoWidth: video.videoWidth,
      videoHeight: video.videoHeight,
      engine: player?.engine,
      errors: [...(player?.errors ?? [])],
      fatal: player?.fatal ?? null,
      levels: [...(player?.levels ?? [])],
      level: player?.level ?? -1,
      switches: [...(player?.switches ?? [])],
    };
  });
}

/** Polls the page until `done(state)` holds, or throws with the last state after `timeoutMs`. */
export async function waitForPlayer(page: Page, what: string, done: (state: PlayerState) => boolean, timeoutMs = 20_000): Promise<PlayerState> {
  const deadline = Date.now() + timeoutMs;
  let state = await playerState(page);
  while (!done(state)) {
    if (state.fatal !== null) throw new Error(`player failed while waiting for ${what}: ${state.fatal} (errors: ${state.errors.join(', ')})`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(state)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
    state = await playerState(page);
  }
  return state;
}
