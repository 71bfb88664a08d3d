import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openVisualiserSession, type VisualiserSession } from '../helpers/visualiser-session.ts';

const port = 7911;
const base = `http://127.0.0.1:${port}`;

let session: VisualiserSession;
let page: Page;

interface Shown {
  getAttribute(name: string): string | null;
  textContent: string | null;
  querySelectorAll(selector: string): ArrayLike<Shown>;
  classList: { contains(name: string): boolean };
}

/** What the test reads of the page (the project compiles without the DOM library). */
interface PageGlobals {
  streamsVisualiser: { plans: number; nodes: number };
  document: { querySelectorAll(selector: string): ArrayLike<Shown>; querySelector(selector: string): (Shown & { hidden: boolean }) | null };
  getComputedStyle(element: Shown): { strokeDasharray: string };
}

const inPage = <T>(read: (page: PageGlobals) => T): Promise<T> => session.inPage(read);

beforeAll(async () => {
  session = await openVisualiserSession('pipelines/three-workers.yaml', port, undefined, 'plan');
  page = session.page;
  await page.goto(`${base}/`);
});

afterAll(async () => {
  await session?.close();
});

describe('the visualiser of a pipeline on three hosts (`streams plan --ui`)', () => {
  it('draws a box per host with its name and role, holding a box for each node instance on it', async () => {
    await session.until(() => inPage((g) => g.streamsVisualiser?.plans >= 1), 'the plan drawn');
    const groups = await inPage((g) => Array.from(g.document.querySelectorAll('.host-group'), (h) => [h.getAttribute('data-host'), h.querySelectorAll('.host-header')[0]?.textContent]));
    expect(groups).toEqual([
      ['a', 'a · origin'],
      ['b', 'b · worker'],
      ['c', 'c · worker'],
    ]);
    const boxes = await inPage((g) => Array.from(g.document.querySelectorAll('.node'), (n) => `${n.getAttribute('data-node')}@${n.getAttribute('data-host')}`));
    expect(boxes.sort()).toEqual(['enrich@b', 'enrich@c', 'out@a', 'readings@a']);
    // Nothing runs: the page says so, and no box claims a rate.
    expect(await inPage((g) => g.document.querySelector('#here')?.textContent)).toContain('plan only');
    expect(await inPage((g) => Array.from(g.document.querySelectorAll('.node text.rate'), (t) => t.textContent))).toEqual(['planned', 'planned', 'planned', 'planned']);
  });

  it('draws the edges between hosts dashed, labelled with their Kafka topic', async () => {
    const edges = await inPage((g) =>
      Array.from(g.document.querySelectorAll('.edge.cross-host'), (e) => ({
        hosts: e.getAttribute('data-hosts'),
        label: e.querySelectorAll('text.transport')[0]?.textContent,
        dash: g.getComputedStyle(e.querySelectorAll('path')[0]).strokeDasharray,
      })),
    );
    expect(edges.map((e) => e.hosts).sort()).toEqual(['a>b', 'a>c', 'b>a', 'c>a']);
    expect(edges.filter((e) => e.hosts!.startsWith('a>')).map((e) => e.label)).toEqual(['kafka streams.three-workers.readings.out.enrich.in', 'kafka streams.three-workers.readings.out.enrich.in']);
    expect(edges.every((e) => e.dash !== 'none' && e.dash !== '')).toBe(true);
    await page.screenshot({ path: '/tmp/visualiser-hosts.png' });
  });

  it('switches to a flat graph and back with the toggle', async () => {
    expect(await inPage((g) => g.document.querySelector('#layout-toggle')?.hidden)).toBe(false);
    await page.click('#layout-toggle button[data-mode="flat"]');
    // `inPage` runs its function in the page: it reads nothing of the test's scope.
    await session.until(() => inPage((g) => g.document.querySelectorAll('.host-group').length === 0), 'the flat layout');
    expect(await inPage((g) => g.document.querySelectorAll('.node').length)).toBe(3);
    expect(await inPage((g) => g.document.querySelectorAll('.edge.cross-host').length)).toBe(2);
    await page.click('#layout-toggle button[data-mode="hosts"]');
    await session.until(() => inPage((g) => g.document.querySelectorAll('.host-group').length === 3), 'the host boxes again');
  });
});
