/**
 * Acknowledging received QoS 1/2 messages to the broker in the order they
 * arrived, once the graph is done with them.
 */
import type { MqttConnection } from '../../../native/mqtt/connection.ts';

/** What must be acknowledged for one message, and on which connection it came. */
export interface AckToken {
  messageId: number;
  qos: 1 | 2;
  /** The connection it arrived on (`MqttConnection.link`). */
  link: object;
}

interface Entry {
  tokens: AckToken[];
  done: boolean;
}

/**
 * Batches may be acknowledged by the graph out of order (fan-out, dead
 * letters), but MQTT wants PUBACK and PUBREC in the order of the PUBLISH
 * packets (MQTT 3.1.1 §4.6): a batch's acknowledgements are sent once it and
 * every batch before it are done.
 */
export class AckSequence {
  #connection: () => MqttConnection | undefined;
  #queue: Entry[] = [];
  #head = 0;
  #idle: (() => void)[] = [];
  /** Acknowledgements not sent because their connection had closed (the broker forgets or redelivers those messages). */
  stale = 0;
  sent = 0;

  constructor(connection: () => MqttConnection | undefined) {
    this.#connection = connection;
  }

  /** Messages received and not yet acknowledged. */
  get pending(): number {
    let count = 0;
    for (let i = this.#head; i < this.#queue.length; i++) count += this.#queue[i].tokens.length;
    return count;
  }

  /** Registers a batch's messages; returns what to call when the graph is done with the batch. */
  track(tokens: AckToken[]): () => void {
    const entry: Entry = { tokens, done: false };
    this.#queue.push(entry);
    return () => {
      entry.done = true;
      this.#drain();
    };
  }

  /** Resolves once every tracked batch has been acknowledged. */
  idle(): Promise<void> {
    if (this.#head === this.#queue.length) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #drain(): void {
    const connection = this.#connection();
    while (this.#head < this.#queue.length && this.#queue[this.#head].done) {
      const entry = this.#queue[this.#head];
      this.#queue[this.#head++] = undefined as never;
      for (const token of entry.tokens) {
        if (connection?.acknowledge(token.messageId, token.qos, token.link)) this.sent += 1;
        else this.stale += 1;
      }
    }
    if (this.#head > 256 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    if (this.#head === this.#queue.length) for (const resolve of this.#idle.splice(0)) resolve();
  }
}
