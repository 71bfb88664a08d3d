/**
 * `streams tap URL NODE[.PORT]` and `streams top URL`: the admin API of a
 * running graph (`streams run --ui`) from a terminal, as Vector's `tap` and
 * `top`. The token comes from `--token` or `STREAMS_UI_TOKEN`.
 */
import type { LiveEvent } from '../runtime/server/protocol.ts';
import { UsageError } from './usage-error.ts';

type Of<T extends LiveEvent['type']> = Extract<LiveEvent, { type: T }>;

/** `http://host:port` from what the user typed (`127.0.0.1:7450`, `http://...`, a trailing slash). */
export function adminBase(text: string): string {
  const withScheme = /^https?:\/\//.test(text) ? text : `http://${text}`;
  try {
    const url = new URL(withScheme);
    return `${url.protocol}//${url.host}`;
  } catch {
    throw new UsageError(`\`${text}\` is not the address of a running graph's --ui (e.g. 127.0.0.1:7450)`);
  }
}

function headersFor(values: Record<string, unknown>): Record<string, string> {
  const token = values.token !== undefined ? String(values.token) : process.env.STREAMS_UI_TOKEN;
  return token ? { authorization: `Bearer ${token}` } : {};
}

/** Why an answer was not 200, in one line. */
async function refusal(response: Response): Promise<string> {
  if (response.status === 401) return 'unauthorized: pass the run\'s --ui-token with --token or STREAMS_UI_TOKEN';
  const body = (await response.json().catch(() => undefined)) as { error?: { message?: string } } | undefined;
  return `${response.status}: ${body?.error?.message ?? response.statusText}`;
}

async function connect(url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (error) {
    if ((error as Error).name === 'AbortError') throw error;
    throw new UsageError(`cannot reach ${new URL(url).host}: is \`streams run --ui\` running there? (${((error as Error).cause as Error | undefined)?.message ?? (error as Error).message})`);
  }
}

/** Prints the records passing through a node's port as JSON lines until interrupted (or `--limit` records). */
export async function tapCommand(values: Record<string, unknown>, positionals: string[]): Promise<number> {
  if (positionals.length !== 2) throw new UsageError('tap takes the address of a running graph and NODE or NODE.PORT');
  const base = adminBase(positionals[0]);
  const [node, port] = positionals[1].split('.', 2);
  const limit = values.limit === undefined ? Infinity : Number(values.limit);
  if (!(limit > 0)) throw new UsageError(`--limit takes a positive number, got \`${String(values.limit)}\``);
  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.once('SIGINT', onSignal);
  try {
    const path = `/api/tap/${encodeURIComponent(node)}${port ? `/${encodeURIComponent(port)}` : ''}?follow=1`;
    const response = await connect(base + path, { headers: headersFor(values), signal: controller.signal });
    if (!response.ok) {
      process.stderr.write(`streams tap: ${await refusal(response)}\n`);
      return 1;
    }
    let printed = 0;
    let rest = '';
    const decoder = new TextDecoder();
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      rest += decoder.decode(chunk, { stream: true });
      let newline: number;
      while ((newline = rest.indexOf('\n')) >= 0) {
        const line = rest.slice(0, newline);
        rest = rest.slice(newline + 1);
        process.stdout.write(`${JSON.stringify((JSON.parse(line) as { record: unknown }).record)}\n`);
        if (++printed >= limit) {
          controller.abort();
          return 0;
        }
      }
    }
    return 0;
  } catch (error) {
    if ((error as Error).name === 'AbortError') return 0;
    throw error;
  } finally {
    process.off('SIGINT', onSignal);
  }
}

interface StatsAnswer {
  nodes: Of<'node.stats'>[];
  edges: Of<'edge.stats'>[];
  states: Of<'node.state'>[];
}

/** The table `top` prints: one row per node with its rates, fullest input channel, drops, errors and restarts. */
export function topTable(stats: StatsAnswer): string {
  const rate = (n: number): string => (n >= 1000 ? `${(n / 1000).toFixed(1)}k` : n.toFixed(n < 10 ? 1 : 0));
  const header = ['NODE', 'STATE', 'IN/S', 'OUT/S', 'QUEUE', 'DROPS', 'ERRORS', 'RESTARTS'];
  const rows = stats.nodes.map((node) => {
    const state = stats.states.find((s) => s.node === node.node)?.state ?? '?';
    const inputs = stats.edges.filter((e) => e.to === node.node);
    const fullest = inputs.reduce((max, e) => Math.max(max, e.capacity > 0 ? e.depth / e.capacity : 0), 0);
    const drops = Object.values(node.drops).reduce((a, b) => a + b, 0) + inputs.reduce((a, e) => a + e.drops, 0);
    return [node.node, state, rate(node.records_in_per_s), rate(node.records_out_per_s), inputs.length ? `${Math.round(fullest * 100)}%` : '-', String(drops), String(node.errors), String(node.restarts)];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  return [header, ...rows].map((row) => row.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ')).join('\n') + '\n';
}

/** A table of the nodes' numbers, refreshed every second (or printed once with `--once`). */
export async function topCommand(values: Record<string, unknown>, positionals: string[]): Promise<number> {
  if (positionals.length !== 1) throw new UsageError('top takes the address of a running graph (its --ui)');
  const base = adminBase(positionals[0]);
  let stopped = false;
  const onSignal = (): void => {
    stopped = true;
  };
  process.once('SIGINT', onSignal);
  try {
    while (!stopped) {
      const response = await connect(`${base}/api/stats`, { headers: headersFor(values) });
      if (!response.ok) {
        process.stderr.write(`streams top: ${await refusal(response)}\n`);
        return 1;
      }
      const table = topTable((await response.json()) as StatsAnswer);
      if (values.once) {
        process.stdout.write(table);
        return 0;
      }
      // Clears the screen only on a terminal; piped, each refresh follows the last.
      process.stdout.write(process.stdout.isTTY ? `\x1b[H\x1b[2J${table}` : `${table}\n`);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
  }
}
