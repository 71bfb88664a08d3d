/**
 * Acknowledgements: how a source learns that every sink downstream has
 * finished with a batch (written it, or deliberately dropped it), so that it
 * can commit (a Kafka offset, an MQTT QoS 1 ack, a file checkpoint).
 *
 * An `Ack` counts its holders. Fan-out retains it once per extra holder;
 * each holder releases it once. When the count reaches zero the source's
 * callback runs. `settle` is separate: it returns the source's in-flight
 * credit early when a stateful operator (a window) has folded the records
 * into its state and holds no buffer for them, while the commit still waits
 * for the release.
 */
export class Ack {
  #pending = 1;
  #settled = false;
  #onDone: (() => void) | undefined;
  #onSettle: (() => void) | undefined;

  constructor(onDone?: () => void, onSettle?: () => void) {
    this.#onDone = onDone;
    this.#onSettle = onSettle;
  }

  /** An acknowledgement nobody waits for (records made inside the graph). */
  static none(): Ack {
    return new Ack();
  }

  /** One ack for many: released when the combined one is released, once. */
  static all(acks: readonly Ack[]): Ack {
    if (acks.length === 1) return acks[0];
    return new Ack(
      function releaseAll() {
        for (const ack of acks) ack.release();
      },
      function settleAll() {
        for (const ack of acks) ack.settle();
      },
    );
  }

  get done(): boolean {
    return this.#pending <= 0;
  }

  retain(count = 1): void {
    this.#pending += count;
  }

  release(): void {
    if (this.#pending <= 0) return;
    this.#pending -= 1;
    if (this.#pending === 0) {
      this.settle();
      const done = this.#onDone;
      this.#onDone = undefined;
      done?.();
    }
  }

  settle(): void {
    if (this.#settled) return;
    this.#settled = true;
    const settle = this.#onSettle;
    this.#onSettle = undefined;
    settle?.();
  }
}
