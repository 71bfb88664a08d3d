/**
 * A running graph with its visualiser open in Chromium, for the page's
 * tests: `streams run FILE --ui` in its own process, the page built afresh,
 * a browser page with its console and errors kept for failure messages.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { buildUi } from '../../bin/build-ui.ts';
import { launchBrowser, type TestBrowser } from './browser.ts';

export interface VisualiserSession {
  readonly base: string;
  readonly page: Page;
  /** Runs `read` in the page with its `globalThis` (the project compiles without the DOM library). */
  inPage<T, G = unknown>(read: (page: G) => T): Promise<T>;
  /** Polls `read` until it gives a value, failing after `ms` with the page's last log lines and the run's stderr. */
  until<T>(read: () => Promise<T | undefined | false>, what: string, ms?: number): Promise<T>;
  close(): Promise<void>;
}

/** How the session starts the graph: `streams run` (the default) or `streams plan`, with more arguments (`--param`). */
export interface SessionCommand {
  command?: 'run' | 'plan';
  args?: string[];
}

/** Starts `streams run file --ui 127.0.0.1:port` (with `token` when given) and opens a browser page (not yet navigated). */
export async function openVisualiserSession(file: string, port: number, token?: string, { command = 'run', args: more = [] }: SessionCommand = {}): Promise<VisualiserSession> {
  const base = `http://127.0.0.1:${port}`;
  const logs: string[] = [];
  let stderr = '';
  await buildUi(join(import.meta.dirname, '..', '..', 'dist'));
  const args = ['bin/streams.ts', command, file, '--ui', `127.0.0.1:${port}`, ...(token ? ['--ui-token', token] : []), ...(command === 'run' ? ['--log-level', 'warn'] : []), ...more];
  const child: ChildProcess = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));

  async function until<T>(read: () => Promise<T | undefined | false>, what: string, ms = 20_000): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const value = await read().catch(() => undefined);
      if (value !== undefined && value !== false) return value;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; page log: ${logs.slice(-10).join(' | ')}; stderr: ${stderr.slice(-2000)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  let browser: TestBrowser | undefined;
  async function close(): Promise<void> {
    await browser?.close();
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.on('exit', resolve));
    }
  }
  try {
    await until(async () => (await fetch(`${base}/healthz`)).ok, 'the admin server');
    browser = await launchBrowser({ log: (line) => logs.push(line) });
    const page = await browser.browser.newPage({ viewport: { width: 1400, height: 800 } });
    page.on('console', (message) => logs.push(`${message.type()}: ${message.text()}`));
    page.on('pageerror', (error) => logs.push(`pageerror: ${error.message}`));
    return {
      base,
      page,
      inPage: <T, G>(read: (page: G) => T) => page.evaluate(`(${read.toString()})(globalThis)`) as Promise<T>,
      until,
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
