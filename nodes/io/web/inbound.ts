/**
 * Messages arriving on sockets (`ws.server`, `ws.client`), gathered into one
 * batch per turn of the event loop and bounded: while too many records are
 * unacknowledged downstream, or the runtime says downstream is full, the
 * sockets are paused so the kernel's buffers, then the peers, wait.
 */
import type { Batch, NodeContext } from '../../../runtime/api.ts';

const batchLimit = 1024;

export interface InboundOptions {
  /** Records emitted and not yet acknowledged before reading pauses. */
  maxInFlight: number;
  /** Hands a batch downstream. */
  emit(batch: Batch): void;
  /** Stops reading every socket. */
  pause(): void;
  /** Reads again. */
  resume(): void;
}

export class InboundBatcher {
  #ctx: NodeContext<unknown>;
  #options: InboundOptions;
  #items: unknown[] = [];
  #scheduled: NodeJS.Immediate | undefined;
  #inFlight = 0;
  #paused = false;
  #waitingReady = false;
  #closed = false;

  constructor(ctx: NodeContext<any>, options: InboundOptions) {
    this.#ctx = ctx;
    this.#options = options;
  }

  /** Whether sockets should be paused now (a new connection starts paused). */
  get paused(): boolean {
    return this.#paused;
  }

  /** Records emitted and not yet acknowledged. */
  get inFlight(): number {
    return this.#inFlight;
  }

  push(item: unknown): void {
    if (this.#closed) return;
    this.#items.push(item);
    if (this.#items.length >= batchLimit) this.flush();
    else this.#scheduled ??= setImmediate(() => this.flush());
  }

  /** Emits what has gathered. */
  flush(): void {
    if (this.#scheduled) clearImmediate(this.#scheduled);
    this.#scheduled = undefined;
    if (this.#items.length === 0) return;
    const items = this.#items;
    this.#items = [];
    const count = items.length;
    this.#inFlight += count;
    const batcher = this;
    const ack = this.#ctx.newAck(function inboundAcknowledged() {
      batcher.#inFlight -= count;
      batcher.#update();
    });
    this.#options.emit({ items, ack });
    this.#update();
  }

  /** Emits what remains and stops pausing or resuming anything. */
  close(): void {
    this.flush();
    this.#closed = true;
  }

  #update(): void {
    if (this.#closed) return;
    const { maxInFlight } = this.#options;
    if (!this.#waitingReady) {
      const wait = this.#ctx.ready();
      if (wait) {
        this.#waitingReady = true;
        this.#setPaused(true);
        void wait.then(() => {
          this.#waitingReady = false;
          this.#update();
        });
        return;
      }
    } else {
      return;
    }
    if (this.#inFlight >= maxInFlight) this.#setPaused(true);
    // Hysteresis: resume at half the bound so reading does not flap.
    else if (this.#inFlight <= maxInFlight / 2) this.#setPaused(false);
  }

  #setPaused(paused: boolean): void {
    if (paused === this.#paused) return;
    this.#paused = paused;
    if (paused) this.#options.pause();
    else this.#options.resume();
  }
}
