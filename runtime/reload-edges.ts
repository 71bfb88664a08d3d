/**
 * What a reload does with the records waiting on edges it removed: they were
 * emitted but not yet taken, so they go on to where their producer's port
 * leads now, instead of being dropped with the edge.
 */
import type { Channel } from './channel.ts';
import type { Batch, Logger } from './types.ts';

/**
 * Hands on what waits in channels whose edge a reload removed (a node put in
 * front of their consumer, or the consumer reading elsewhere now): in order
 * and before anything newer, to the channels their producer's port gained in
 * this reload (`fresh`); the channels it kept had every batch pushed to them
 * already. A batch waiting in several such channels (fan-out) goes on once.
 * Each record goes on once; at least once for a batch a sink forced at the
 * reload deadline held (the engine put it back in the channel, and the
 * forced sink may still write it). With no new route the
 * records are dropped, counted and logged. `routesOf` gives the channels a
 * port (`node.port`) feeds now.
 */
export function handOnWaiting(stale: readonly Channel[], fresh: ReadonlySet<Channel>, routesOf: (from: string) => readonly Channel[], log: Logger): void {
  const byPort = new Map<string, Channel[]>();
  for (const channel of stale) {
    const list = byPort.get(channel.from);
    if (list) list.push(channel);
    else byPort.set(channel.from, [channel]);
  }
  for (const [from, channels] of byPort) {
    const routes = routesOf(from).filter((c) => fresh.has(c));
    if (routes.length === 0) {
      for (const channel of channels) {
        const lost = channel.discard();
        if (lost > 0) log.warn({ from, to: channel.to, records: lost }, 'reload: records waiting on a removed edge have nowhere new to go; they were dropped');
      }
      continue;
    }
    // Each channel holds the newest batches of the port, oldest first: the longest holds the others' too.
    const queues = channels.map((c) => c.takeWaiting()).sort((a, b) => b.length - a.length);
    const seen = new Set<Batch>();
    let records = 0;
    for (const queue of queues) {
      for (const batch of queue) {
        // Fan-out retained the ack once per copy: a copy not handed on releases its hold.
        if (seen.has(batch)) {
          batch.ack.release();
          continue;
        }
        seen.add(batch);
        records += batch.items.length;
        if (routes.length > 1) batch.ack.retain(routes.length - 1);
        for (const next of routes) next.push(batch);
      }
    }
    if (records > 0) log.info({ from, was: channels.map((c) => c.to), now: routes.map((c) => c.to), records }, 'reload: records waiting on a moved edge handed on');
  }
}
