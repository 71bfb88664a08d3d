import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHostUi } from '../../cli/host-ui.ts';
import { planGraph } from '../../graph/plan.ts';
import { launchBrowser } from '../helpers/browser.ts';
import { checkYaml } from '../helpers/pipeline.ts';
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
  session = await openVisualiserSession('pipelines/three-workers.yaml', port, undefined, { command: 'plan' });
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

describe('the visualiser of a worker (`streams worker --ui`)', () => {
  it('draws the whole plan with the other hosts\' nodes greyed and this host named', async () => {
    const graph = checkYaml(readFileSync('pipelines/three-workers.yaml', 'utf8'), [], 'pipelines/three-workers.yaml');
    const ui = await startHostUi({ listen: { host: '127.0.0.1', port: 7913 }, view: { graph, plan: planGraph({ graph }).plan!, here: 'b' } });
    const browser = await launchBrowser();
    try {
      const worker = await browser.browser.newPage({ viewport: { width: 1400, height: 800 } });
      await worker.goto('http://127.0.0.1:7913/');
      const read = (): Promise<{ live: string[]; greyed: string[]; here: string | null | undefined; remoteHosts: string[] }> =>
        worker.evaluate(`(() => ({
          live: Array.from(document.querySelectorAll('.node:not(.remote)'), (n) => n.dataset.node + '@' + n.dataset.host),
          greyed: Array.from(document.querySelectorAll('.node.remote'), (n) => n.dataset.node + '@' + n.dataset.host).sort(),
          here: document.querySelector('#here')?.textContent,
          remoteHosts: Array.from(document.querySelectorAll('.host-group.remote'), (h) => h.dataset.host),
        }))()`);
      await session.until(async () => (await read()).live.length > 0, 'the worker\'s plan drawn');
      const shown = await read();
      expect(shown.live).toEqual(['enrich@b']);
      expect(shown.greyed).toEqual(['enrich@c', 'out@a', 'readings@a']);
      expect(shown.here).toBe('this host: b (other hosts greyed)');
      expect(shown.remoteHosts.sort()).toEqual(['a', 'c']);
      // Another host's node has no numbers or tap here: the panel says where they are.
      await worker.click('[data-node="readings"]');
      const details = await session.until(async () => {
        const text = (await worker.evaluate(`document.querySelector('#details')?.textContent ?? ''`)) as string;
        return text.includes('readings') ? text : undefined;
      }, 'the details of readings');
      expect(details).toContain('runs on a, not on this host (b)');
      expect(details).not.toContain('Live tap');
      await worker.screenshot({ path: '/tmp/visualiser-worker-b.png' });
    } finally {
      await browser.close();
      await ui.close();
    }
  });
});

describe('the visualiser of a pipeline with hosts under `streams run` (every host\'s nodes in one process)', () => {
  it('draws the host boxes with every node live and rates on the edges between hosts', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'streams-hosts-ui-')), 'out.jsonl');
    const run = await openVisualiserSession('pipelines/three-workers.yaml', 7914, undefined, { args: ['--param', `out=${out}`] });
    try {
      await run.page.goto('http://127.0.0.1:7914/');
      const rates = await run.until(async () => {
        const shown = (await run.page.evaluate(`(() => ({
          groups: document.querySelectorAll('.host-group').length,
          greyed: document.querySelectorAll('.node.remote, .node.planned').length,
          rates: Array.from(document.querySelectorAll('.edge.cross-host text.rate'), (t) => t.textContent),
        }))()`)) as { groups: number; greyed: number; rates: string[] };
        return shown.groups === 3 && shown.rates.length === 4 && shown.rates.every((r) => r !== '0/s') ? shown : undefined;
      }, 'rates on the edges between hosts');
      expect(rates.greyed).toBe(0);
    } finally {
      await run.close();
      rmSync(dirname(out), { recursive: true, force: true });
    }
  });
});
