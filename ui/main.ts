/**
 * The visualiser page: takes its token once from `?token=` (kept for the
 * session, removed from the address bar), follows `/api/live`, and draws
 * what it is told. Reconnects when the connection drops.
 */
import type { LiveEvent, ReloadRecord } from '../runtime/server/protocol.ts';
import { GraphView, formatRate, type LayoutMode } from './graph-view.ts';
import { SidePanel } from './side-panel.ts';

function takeToken(): string | undefined {
  const url = new URL(location.href);
  const given = url.searchParams.get('token');
  if (given) {
    sessionStorage.setItem('streams.token', given);
    url.searchParams.delete('token');
    history.replaceState(null, '', url);
  }
  return sessionStorage.getItem('streams.token') ?? undefined;
}

const token = takeToken();
const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};

async function get(path: string): Promise<unknown> {
  const response = await fetch(path, { headers });
  if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
  return response.json();
}

/** A browser cannot set headers on a WebSocket: the token travels as a subprotocol. */
function bearerProtocol(secret: string): string {
  const bytes = new TextEncoder().encode(secret);
  const base64 = btoa(String.fromCharCode(...bytes));
  return `streams.bearer.${base64.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')}`;
}

const connection = document.getElementById('connection')!;
const totals = document.getElementById('totals')!;
const panel = new SidePanel(get);
const view = new GraphView(document.getElementById('graph') as unknown as SVGSVGElement, (id) => {
  view.select(id);
  panel.select(id);
});
const seenReloads = new Set<string>();
const layoutToggle = document.getElementById('layout-toggle')!;
const hereMark = document.getElementById('here')!;

/** The "by host" / "flat" switch: shown for a graph with hosts; the choice is kept for the session. */
function showMode(mode: LayoutMode): void {
  for (const button of layoutToggle.querySelectorAll('button')) button.setAttribute('aria-pressed', String(button.dataset.mode === mode));
}
const savedMode = sessionStorage.getItem('streams.layout');
if (savedMode === 'flat' || savedMode === 'hosts') void view.setMode(savedMode);
showMode(view.mode);
layoutToggle.addEventListener('click', (event) => {
  const mode = (event.target as HTMLElement).closest('button')?.dataset.mode;
  if (mode !== 'hosts' && mode !== 'flat') return;
  sessionStorage.setItem('streams.layout', mode);
  showMode(mode);
  void view.setMode(mode).then(() => (status.plans += 1));
});
const sourceRates = new Map<string, number>();

/** Shown in tests and to curious users: `window.streamsVisualiser`. */
const status = { events: 0, plans: 0, nodes: 0, timings: view.timings, lastPlan: undefined as undefined | Extract<LiveEvent, { type: 'graph.plan' }> };
(window as unknown as { streamsVisualiser: typeof status }).streamsVisualiser = status;

function showReload(record: ReloadRecord): void {
  const key = `${record.time}:${record.status}`;
  if (seenReloads.has(key)) return;
  seenReloads.add(key);
  panel.reload(record);
}

async function handle(event: LiveEvent): Promise<void> {
  status.events += 1;
  switch (event.type) {
    case 'hello':
      break;
    case 'graph.plan':
      document.getElementById('graph-name')!.textContent = `${event.graph} — ${event.file}`;
      document.title = `${event.graph} — AMI Streams`;
      status.lastPlan = event;
      layoutToggle.hidden = event.hosts === undefined;
      hereMark.hidden = event.here === undefined && !event.plan_only;
      hereMark.textContent = event.plan_only ? 'plan only: nothing runs here' : `this host: ${event.here ?? ''} (other hosts greyed)`;
      panel.plan(event);
      await view.show(event);
      status.plans += 1;
      status.nodes = view.nodeCount;
      status.timings = view.timings;
      break;
    case 'node.state':
      view.nodeState(event);
      panel.nodeState(event);
      break;
    case 'node.stats': {
      view.nodeStats(event);
      panel.nodeStats(event);
      const node = status.lastPlan?.nodes.find((n) => n.id === event.node);
      if (node?.source_node) sourceRates.set(event.node, event.records_out_per_s);
      totals.textContent = `sources emit ${formatRate([...sourceRates.values()].reduce((a, b) => a + b, 0))}`;
      break;
    }
    case 'edge.stats':
      view.edgeStats(event);
      break;
    case 'reload.applied':
      showReload(event.reload);
      view.highlight(event.reload.diff);
      break;
    case 'reload.rejected':
      showReload(event.reload);
      break;
    case 'diagnostic':
      break;
  }
}

function connect(): void {
  const url = new URL('/api/live', location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  const socket = new WebSocket(url, token ? ['streams.v1', bearerProtocol(token)] : ['streams.v1']);
  // Events are handled in order: a plan's layout finishes before the numbers that follow it are drawn.
  let queue: Promise<void> = Promise.resolve();
  socket.onopen = () => {
    connection.textContent = 'live';
    connection.className = 'status live';
    get('/api/reloads').then(
      (answer) => (answer as { reloads: ReloadRecord[] }).reloads.forEach(showReload),
      () => undefined,
    );
  };
  socket.onmessage = (message) => {
    const events = JSON.parse(String(message.data)) as LiveEvent[];
    for (const event of events) queue = queue.then(() => handle(event)).catch((error: unknown) => console.error(error));
  };
  socket.onclose = (close) => {
    connection.textContent = close.code === 1006 && !token ? 'disconnected (a token may be needed: open the page with ?token=…)' : 'disconnected: reconnecting…';
    connection.className = 'status down';
    setTimeout(connect, 2000);
  };
}

connect();
