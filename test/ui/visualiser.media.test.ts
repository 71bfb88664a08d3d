import { readFileSync } from 'node:fs';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openVisualiserSession, type VisualiserSession } from '../helpers/visualiser-session.ts';

const port = 19503;
const token = 'tok-visualiser';
const base = `http://127.0.0.1:${port}`;
const file = 'pipelines/visualiser-demo.yaml';
const text = readFileSync(file, 'utf8');

let session: VisualiserSession;
let page: Page;

/** What the page keeps in `window.streamsVisualiser` (the project compiles without the DOM library). */
interface PageGlobals {
  streamsVisualiser: { events: number; plans: number; nodes: number };
  document: { querySelectorAll(selector: string): ArrayLike<{ textContent: string | null; getAttribute(name: string): string | null }>; querySelector(selector: string): { textContent: string | null; hidden: boolean } | null };
  marker?: number;
  location: { href: string };
}

const inPage = <T>(read: (page: PageGlobals) => T): Promise<T> => session.inPage(read);
const until = <T>(read: () => Promise<T | undefined | false>, what: string): Promise<T> => session.until(read, what);

const reload = (body: string): Promise<Response> => fetch(`${base}/api/reload`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body });

beforeAll(async () => {
  session = await openVisualiserSession(file, port, token);
  page = session.page;
  await page.goto(`${base}/?token=${token}`);
});

afterAll(async () => {
  await session?.close();
});

describe('the visualiser page in Chromium', () => {
  it('shows every node of the running pipeline, and takes the token out of the address bar', async () => {
    await until(() => inPage((g) => g.streamsVisualiser?.nodes === 6), 'six nodes drawn');
    const shown = await inPage((g) => Array.from(g.document.querySelectorAll('[data-node]'), (n) => n.getAttribute('data-node')));
    expect(shown.sort()).toEqual(['celsius', 'out', 'per-second', 'sensors', 'stats', 'valid']);
    expect(await inPage((g) => g.location.href)).toBe(`${base}/`);
  });

  it('shows rates above zero on the edges while records flow', async () => {
    const rates = await until(async () => {
      const texts = await inPage((g) => Array.from(g.document.querySelectorAll('.edge text.rate'), (t) => t.textContent));
      return texts.some((t) => t !== '0/s' && t !== null) ? texts : undefined;
    }, 'a rate above 0');
    expect(rates.length).toBe(5);
  });

  it('shows the rate of the edge fused away (window into aggregate), marked fused, not 0/s', async () => {
    const edge = '[data-edge="per-second.out->stats"]';
    // Panes of three devices close every second: a few a second cross the fused edge.
    const shown = await until(async () => {
      const texts = await inPage((g) => ({
        rate: g.document.querySelectorAll('[data-edge="per-second.out->stats"] text.rate')[0]?.textContent ?? '',
        bytes: g.document.querySelectorAll('[data-edge="per-second.out->stats"] text.bytes')[0]?.textContent ?? '',
        fused: g.document.querySelectorAll('[data-edge="per-second.out->stats"].fused').length,
      }));
      return texts.rate !== '0/s' && texts.rate !== '' ? texts : undefined;
    }, `a rate above 0 on ${edge}`);
    expect(shown.rate).toMatch(/^\d+(\.\d)?\/s$/);
    expect(shown.bytes).toBe('fused');
    expect(shown.fused).toBe(1);
    // The same figure the API gives.
    const stats = (await (await fetch(`${base}/api/stats`, { headers: { authorization: `Bearer ${token}` } })).json()) as { edges: { edge: string; fused?: boolean; records: number }[] };
    expect(stats.edges.find((e) => e.edge === 'per-second.out->stats')).toMatchObject({ fused: true });
    expect(stats.edges.find((e) => e.edge === 'per-second.out->stats')!.records).toBeGreaterThan(0);
  });

  it('shows bytes a second on the edges, marked as estimated on edges of events', async () => {
    const bytes = await until(async () => {
      const texts = await inPage((g) => Array.from(g.document.querySelectorAll('.edge text.bytes'), (t) => t.textContent ?? ''));
      return texts.some((t) => /^~\d/.test(t)) ? texts : undefined;
    }, 'bytes a second above 0');
    expect(bytes.length).toBe(5);
    // Readings of a few fields: tens of bytes each, 200 a second at the source.
    const sensors = await inPage((g) => g.document.querySelectorAll('[data-edge="sensors.out->valid"] text.bytes')[0]?.textContent ?? '');
    expect(sensors).toMatch(/^~\d+(\.\d)? kB\/s$/);
  });

  it('shows a node\'s settings, numbers and a live tap of its records when clicked', async () => {
    await page.click('[data-node="celsius"]');
    const tap = await until(async () => {
      const t = await inPage((g) => g.document.querySelector('#details pre.tap')?.textContent ?? '');
      return t.includes('fahrenheit') ? t : undefined;
    }, 'tapped records');
    expect(tap).toContain('"device"');
    const details = await inPage((g) => g.document.querySelector('#details')?.textContent ?? '');
    expect(details).toContain('value * 9.0 / 5.0 + 32.0');
    expect(details).toContain('records out');
  });

  it('writes `fused` for the bytes of the nodes beside the fused edge (not measured), not 0 B/s', async () => {
    /** The `bytes in / out` row of a node's numbers once it reads as `expected`. */
    const bytesRow = async (node: string, expected: RegExp): Promise<string> => {
      await page.click(`[data-node="${node}"]`);
      return until(async () => {
        const rows = await inPage((g) => Array.from(g.document.querySelectorAll('#details table.numbers tr'), (row) => row.textContent ?? ''));
        const row = rows.find((r) => r.startsWith('bytes in / out'));
        return row && expected.test(row) ? row : undefined;
      }, `the bytes of ${node} matching ${expected}`);
    };
    // The window: its input measured (estimated, events), its output into the aggregate fused.
    expect(await bytesRow('per-second', /\/ fused/)).toMatch(/^bytes in \/ out~?\d[^/]*B\/s \/ fused/);
    // The aggregate: its only input is the fused edge.
    expect(await bytesRow('stats', /^bytes in \/ outfused \//)).toContain('(fused: no records between the window and its aggregate to size)');
  });

  it('shows a rejected reload\'s diagnostic with file, line and column, and keeps the graph', async () => {
    const response = await reload(text.replace('where:', 'wher:'));
    expect(response.status).toBe(422);
    const shown = await until(async () => {
      const box = await inPage((g) => ({ hidden: g.document.querySelector('#rejected')?.hidden, text: g.document.querySelector('#rejected')?.textContent ?? '' }));
      return box.hidden === false ? box.text : undefined;
    }, 'the rejected reload');
    expect(shown).toMatch(/pipelines\/visualiser-demo\.yaml:\d+:\d+: error: unknown setting `wher`/);
    expect(await inPage((g) => g.streamsVisualiser.nodes)).toBe(6);
  });

  it('redraws the graph after a reload through the API without a page refresh, with the diff', async () => {
    await page.evaluate('globalThis.marker = 42');
    const next = `${text.trimEnd()}\n  audit:\n    op: filter\n    in: celsius\n    with: { where: "fahrenheit > 100.0" }\n  audit-out:\n    op: file.write\n    in: audit\n    with: { path: /dev/null }\n`;
    const response = await reload(next);
    expect(response.status).toBe(200);
    await until(() => inPage((g) => g.streamsVisualiser.nodes === 8), 'eight nodes drawn');
    expect(await inPage((g) => g.marker)).toBe(42);
    const history = await inPage((g) => g.document.querySelector('#reload-list')?.textContent ?? '');
    expect(history).toContain('applied');
    expect(history).toContain('added audit, audit-out');
    expect(await inPage((g) => g.document.querySelectorAll('.node.added').length)).toBe(2);
    await until(async () => {
      const texts = await inPage((g) => Array.from(g.document.querySelectorAll('[data-edge="celsius.out->audit"] text.rate'), (t) => t.textContent));
      return texts[0] && texts[0] !== '0/s' ? true : undefined;
    }, 'a rate on the new edge');
    await page.click('[data-node="per-second"]');
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await page.screenshot({ path: 'docs/visualiser.png' });
  });
});
