/**
 * The gate in front of a source: the channels below it close it while they
 * are full (`block`), and `ctx.ready()` waits on it.
 */
import type { Blockable, Channel } from './channel.ts';

/** A source's gate: closed while any channel downstream of it is full. */
export class SourceGate implements Blockable {
  #blockers = new Set<Channel>();
  #waiting: Promise<void> | undefined;
  #open: (() => void) | undefined;

  block(channel: Channel): void {
    this.#blockers.add(channel);
  }

  unblock(channel: Channel): void {
    this.#blockers.delete(channel);
    if (this.#blockers.size === 0) this.release();
  }

  /** Opens the gate whatever blocks it (on stop, so the source sees its abort). */
  release(): void {
    const open = this.#open;
    this.#waiting = undefined;
    this.#open = undefined;
    open?.();
  }

  ready(): Promise<void> | undefined {
    if (this.#blockers.size === 0) return undefined;
    return (this.#waiting ??= new Promise<void>((resolve) => (this.#open = resolve)));
  }
}
