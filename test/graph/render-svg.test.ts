/**
 * Drawings: the plan as a table and DOT, and graphs and plans as standalone
 * SVG that parses as XML, names every node and escapes what it prints.
 */
import { describe, expect, it } from 'vitest';
import { checkPipeline } from '../../graph/check.ts';
import { planGraph, type Plan } from '../../graph/plan.ts';
import { renderPlanDot, renderPlanJson, renderPlanTable } from '../../graph/render-plan.ts';
import { clip, escapeXml, graphDrawing, planDrawing, renderSvg, type Drawing } from '../../graph/render-svg.ts';
import { registry } from '../../nodes/all.ts';

const text = `streams: 1
name: two-hosts
hosts:
  a: { role: origin }
  b: { role: edge }
transports:
  kafka: { brokers: [k:9092] }
nodes:
  gen: { op: generate, place: { host: a }, with: { count: 1 } }
  win: { op: window.tumbling, in: gen, parallelism: 2, with: { size: 1s, key: device } }
  out: { op: stdout, in: win, place: { host: a } }
`;

function planOf(source: string): Plan {
  const checked = checkPipeline({ file: 'p.yaml', text: source, registry, env: {} });
  return planGraph({ graph: checked.graph!, text: source }).plan!;
}

/**
 * A small well-formedness check: every tag closes in order, attributes are
 * quoted, and no bare `<` or `&` stands in text. Enough to catch unescaped
 * names, which is what can go wrong here.
 */
function wellFormed(xml: string): void {
  const stack: string[] = [];
  const token = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|<|&(?!(?:amp|lt|gt|quot|#39);)/g;
  for (const match of xml.matchAll(token)) {
    if (match[0] === '<' || match[0] === '&') throw new Error(`bare \`${match[0]}\` at ${match.index}: ${xml.slice(match.index - 20, match.index + 20)}`);
    const [, closing, name, , selfClosing] = match;
    if (selfClosing) continue;
    if (!closing) stack.push(name);
    else if (stack.pop() !== name) throw new Error(`\`</${name}>\` closes nothing open at ${match.index}`);
  }
  expect(stack).toEqual([]);
}

describe('the plan as text', () => {
  it('tables the nodes with their hosts, then the edges between hosts with their transport', () => {
    expect(renderPlanTable(planOf(text))).toBe(`node  op               hosts
gen   generate         a
win   window.tumbling  b, a (key device)
out   stdout           a

edge       type   transport
gen → win  Event  kafka streams.two-hosts.gen.out.win.in (2 partitions, key device)
win → out  Event  kafka streams.two-hosts.win.out.out.in (1 partition)
`);
  });

  it('gives JSON with version, nodes and their hosts, edges and their transport, and the hosts', () => {
    const json = JSON.parse(renderPlanJson(planOf(text)));
    expect(Object.keys(json)).toEqual(['version', 'graph', 'nodes', 'edges', 'hosts']);
    expect(json.nodes[1]).toEqual({ name: 'win', op: 'window.tumbling', instances: ['b', 'a'], hosts: ['b', 'a'], key: 'device' });
    expect(json.edges[0]).toMatchObject({ from: 'gen', to: 'win', transport: { kind: 'kafka', topic: 'streams.two-hosts.gen.out.win.in' } });
    expect(json.hosts.map((h: { name: string }) => h.name)).toEqual(['a', 'b']);
  });

  it('draws DOT with a cluster per host and a dashed edge per pair of hosts a transport joins', () => {
    const dot = renderPlanDot(planOf(text));
    expect(dot).toContain('subgraph "cluster_a" {\n    label="a (origin)";');
    expect(dot).toContain('"win@b" [label="win\\nwindow.tumbling"];');
    expect(dot).toContain('"gen@a" -> "win@b" [label="kafka: Event');
    expect(dot).toContain('"gen@a" -> "win@a"');
    expect(dot.match(/style=dashed/g)).toHaveLength(4);
  });
});

describe('SVG drawings', () => {
  it('draws a graph as well-formed SVG naming every node and operator, with arrowheads and edge types', async () => {
    const checked = checkPipeline({ file: 'p.yaml', text, registry, env: {} });
    const svg = await renderSvg(graphDrawing(checked.graph!));
    wellFormed(svg);
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    for (const name of ['gen', 'win', 'out', 'generate', 'window.tumbling', 'stdout']) expect(svg).toContain(`>${name}</text>`);
    expect(svg.match(/marker-end="url\(#arrow\)"/g)).toHaveLength(2);
    expect(svg).toContain('Event{key, start, end, records}');
  });

  it('draws a plan with a box per host holding its nodes', async () => {
    const svg = await renderSvg(planDrawing(planOf(text)));
    wellFormed(svg);
    expect(svg.match(/<g class="host"/g)).toHaveLength(2);
    expect(svg.match(/data-node="win"/g)).toHaveLength(2);
    expect(svg).toContain('stroke-dasharray');
  });

  it('escapes <, &, " and quotes in names and labels', async () => {
    const drawing: Drawing = {
      title: 'a<b>&"c"',
      nodes: [{ id: 'x', name: '<script>&"', op: "o'p" }, { id: 'y', name: 'y', op: 'op' }],
      edges: [{ id: 'e', from: 'x', to: 'y', label: 'Media<video/*> & "more"' }],
    };
    const svg = await renderSvg(drawing);
    wellFormed(svg);
    expect(svg).not.toContain('<script>');
    expect(svg).toContain('&lt;script&gt;&amp;&quot;');
    expect(svg).toContain('o&#39;p');
    expect(svg).toContain('Media&lt;video/*&gt; &amp; &quot;more&quot;');
    expect(escapeXml('<&>"\'')).toBe('&lt;&amp;&gt;&quot;&#39;');
  });

  it('shortens an event type to its field names and cuts long labels', () => {
    expect(clip('Event<{stream: string, bitrate: number}>')).toBe('Event{stream, bitrate}');
    expect(clip('x'.repeat(60))).toHaveLength(40);
  });
});
