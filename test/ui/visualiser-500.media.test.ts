/**
 * The visualiser stays usable at 500 nodes: a running graph of 25 chains of
 * 20 nodes is drawn in full within seconds (laid out in a worker, so the
 * page paints meanwhile), its numbers keep arriving once a
 * second for every node and edge, the page answers a frame promptly while
 * they do, and clicking a node still opens its details.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openVisualiserSession, type VisualiserSession } from '../helpers/visualiser-session.ts';

const port = 19509;
const chains = 25;
const perChain = 20;

/** 25 chains: a slow `generate`, 18 `map`s, a sink. */
function bigPipeline(): string {
  const lines = ['streams: 1', 'name: five-hundred', 'nodes:'];
  for (let c = 0; c < chains; c++) {
    lines.push(`  c${c}-n0:`, '    op: generate', '    with: { rate: 5, fields: { value: "random * 10.0" } }');
    for (let n = 1; n < perChain - 1; n++) lines.push(`  c${c}-n${n}:`, '    op: map', `    in: c${c}-n${n - 1}`, '    with: { set: { value: "value + 1.0" } }');
    lines.push(`  c${c}-n${perChain - 1}:`, '    op: file.write', `    in: c${c}-n${perChain - 2}`, '    with: { path: /dev/null }');
  }
  return `${lines.join('\n')}\n`;
}

let session: VisualiserSession;
let page: Page;

interface PageGlobals {
  streamsVisualiser: { events: number; nodes: number; timings: { layoutMs: number; drawMs: number } };
  document: { querySelector(selector: string): { textContent: string | null } | null };
}

const inPage = <T>(read: (page: PageGlobals) => T): Promise<T> => session.inPage(read);
const until = <T>(read: () => Promise<T | undefined | false>, what: string): Promise<T> => session.until(read, what, 30_000);

/** The time until the page can paint a frame: long when its main thread is busy. */
function frameWait(): Promise<number> {
  return page.evaluate('new Promise((done) => { const t = performance.now(); requestAnimationFrame(() => done(performance.now() - t)); })') as Promise<number>;
}

beforeAll(async () => {
  const file = join(mkdtempSync(join(tmpdir(), 'ui-500-')), 'five-hundred.yaml');
  writeFileSync(file, bigPipeline());
  session = await openVisualiserSession(file, port);
  page = session.page;
}, 60_000);

afterAll(async () => {
  await session?.close();
});

describe('the visualiser with 500 nodes', () => {
  it('draws every node within seconds', async () => {
    const started = Date.now();
    await page.goto(session.base);
    // While the layout runs (in a worker) the page still paints: its main thread is free.
    const waits: number[] = [];
    await until(async () => {
      waits.push(await frameWait());
      return inPage((g) => g.streamsVisualiser?.nodes === 500);
    }, '500 nodes drawn');
    const tookMs = Date.now() - started;
    waits.sort((a, b) => a - b);
    console.log(`frame waits while laying out: median ${waits[waits.length >> 1].toFixed(1)} ms over ${waits.length}`);
    expect(waits[waits.length >> 1]).toBeLessThan(200);
    const timings = await inPage((g) => g.streamsVisualiser.timings);
    console.log(`500 nodes drawn in ${tookMs} ms (layout ${timings.layoutMs} ms, drawing ${timings.drawMs} ms)`);
    // Layout and drawing on a shared 2-core machine; a person waits this long at most once per plan.
    expect(tookMs).toBeLessThan(15_000);
  }, 40_000);

  it('keeps up with the numbers of every node and edge, and answers frames promptly', async () => {
    const before = await inPage((g) => g.streamsVisualiser.events);
    const frames: number[] = [];
    for (let i = 0; i < 10; i++) {
      frames.push(await frameWait());
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    const after = await inPage((g) => g.streamsVisualiser.events);
    // About 3 s of 500 node.stats and 475 edge.stats a second.
    expect(after - before).toBeGreaterThan(1500);
    frames.sort((a, b) => a - b);
    const median = frames[frames.length >> 1];
    console.log(`frame wait median ${median.toFixed(1)} ms, max ${frames[frames.length - 1].toFixed(1)} ms`);
    expect(median).toBeLessThan(200);
  }, 30_000);

  it('opens a node\'s details on click', async () => {
    // The drawing keeps nodes readable rather than fitting 500 in the window: a node in view, as a person would click.
    await page.click('[data-node="c3-n2"]', { timeout: 10_000 });
    const details = await until(async () => {
      const text = await inPage((g) => g.document.querySelector('#details')?.textContent ?? '');
      return text.includes('value + 1.0') ? text : undefined;
    }, 'the clicked node\'s details');
    expect(details).toContain('records out');
  }, 30_000);
});
