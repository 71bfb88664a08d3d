/**
 * The events `sse.server` keeps for clients that reconnect with
 * `Last-Event-ID`: the newest ones, bounded by count and by bytes, with the
 * ids that number them.
 */

/** What survives a reload: the next id and the kept events, oldest first. */
export interface ReplayState {
  nextId: number;
  events: [id: number, frame: string][];
}

function isReplayState(value: unknown): value is ReplayState {
  const state = value as ReplayState | undefined;
  return typeof state?.nextId === 'number' && Number.isInteger(state.nextId) && Array.isArray(state.events);
}

export class ReplayBuffer {
  readonly limit: number;
  readonly limitBytes: number;
  #ids: number[] = [];
  #frames: string[] = [];
  /** Index of the oldest kept event: shifting arrays is quadratic. */
  #head = 0;
  #bytes = 0;
  #next = 1;

  constructor(limit: number, limitBytes: number, restored?: unknown) {
    this.limit = limit;
    this.limitBytes = limitBytes;
    if (isReplayState(restored)) {
      this.#next = restored.nextId;
      for (const [id, frame] of restored.events) this.add(id, frame);
    }
  }

  /** Events kept now. */
  get size(): number {
    return this.#ids.length - this.#head;
  }

  /** The id for the next event; ids only grow. */
  nextId(): number {
    return this.#next++;
  }

  add(id: number, frame: string): void {
    if (this.limit === 0) return;
    this.#ids.push(id);
    this.#frames.push(frame);
    this.#bytes += Buffer.byteLength(frame);
    while (this.size > this.limit || (this.#bytes > this.limitBytes && this.size > 0)) {
      this.#bytes -= Buffer.byteLength(this.#frames[this.#head]);
      this.#frames[this.#head] = '';
      this.#head++;
    }
    if (this.#head > 1024 && this.#head * 2 > this.#ids.length) {
      this.#ids = this.#ids.slice(this.#head);
      this.#frames = this.#frames.slice(this.#head);
      this.#head = 0;
    }
  }

  /** The kept events after `lastId`, joined, oldest first. */
  since(lastId: number): string {
    let low = this.#head;
    let high = this.#ids.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.#ids[middle] <= lastId) low = middle + 1;
      else high = middle;
    }
    return this.#frames.slice(low).join('');
  }

  state(): ReplayState {
    const events: [number, string][] = [];
    for (let i = this.#head; i < this.#ids.length; i++) events.push([this.#ids[i], this.#frames[i]]);
    return { nextId: this.#next, events };
  }
}
