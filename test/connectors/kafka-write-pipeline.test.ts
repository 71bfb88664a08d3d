/**
 * The write pipeline of `kafka.produce`, with a fake writer: batches that
 * arrive while a request is out are gathered into the next one, bounded by
 * `batchBytes` and `maxInFlight`, and each is acknowledged only once the
 * request carrying it is written.
 */
import { Subject } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { Ack } from '../../runtime/ack.ts';
import type { Batch, NodeContext } from '../../runtime/api.ts';
import type { OutgoingMessage } from '../../native/kafka/client.ts';
import { writePipeline, type WritePipelineSettings } from '../../nodes/messaging/kafka/write-pipeline.ts';

/** A request the fake writer was given: its record numbers, and how to end it. */
interface Pending {
  numbers: number[];
  written(): void;
  failed(error: Error): void;
}

function harness(settings: Partial<WritePipelineSettings> = {}) {
  const input = new Subject<Batch>();
  const requests: Pending[] = [];
  const acked: number[] = [];
  const timers: (() => void)[] = [];
  let taken = 0;
  let finished = false;
  let completed = false;
  let error: unknown;
  const ctx = {
    batchDone: () => (taken += 1),
    schedule(_ms: number, fn: () => void) {
      timers.push(fn);
      return () => timers.splice(timers.indexOf(fn), 1);
    },
  } as unknown as NodeContext<unknown>;
  const sink = writePipeline({
    ctx,
    settings: { maxInFlight: 1, lingerMs: 0, batchBytes: 1024, ...settings },
    // Each record is 10 bytes.
    encode: (batch) => ({ messages: (batch.items as number[]).map((n) => ({ topic: 't', value: Buffer.from(String(n)) })), bytes: batch.items.length * 10, span: undefined }),
    write(messages: OutgoingMessage[]) {
      return new Promise<void>((resolve, reject) => requests.push({ numbers: messages.map((m) => Number(m.value!.toString())), written: resolve, failed: reject }));
    },
    async finish() {
      finished = true;
    },
  });
  sink(input).subscribe({ complete: () => (completed = true), error: (e: unknown) => (error = e) });
  const push = (...numbers: number[]): void => input.next({ items: numbers, ack: new Ack(() => acked.push(...numbers)) });
  /** Lets the promise callbacks of a finished write run. */
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  return {
    input,
    requests,
    acked,
    timers,
    push,
    settle,
    taken: () => taken,
    state: () => ({ finished, completed, error }),
  };
}

describe('the kafka.produce write pipeline', () => {
  it('sends the first batch at once and gathers those that arrive while it is out into the next request', async () => {
    const h = harness();
    h.push(1);
    expect(h.requests.map((r) => r.numbers)).toEqual([[1]]);
    h.push(2);
    h.push(3, 4);
    // Taken in (the runtime may hand over more) but not acknowledged.
    expect(h.taken()).toBe(3);
    expect(h.requests).toHaveLength(1);
    expect(h.acked).toEqual([]);
    h.requests[0].written();
    await h.settle();
    expect(h.acked).toEqual([1]);
    expect(h.requests.map((r) => r.numbers)).toEqual([[1], [2, 3, 4]]);
    h.requests[1].written();
    await h.settle();
    expect(h.acked).toEqual([1, 2, 3, 4]);
  });

  it('takes no more input once the request being gathered holds batch_bytes, until it goes', async () => {
    const h = harness({ batchBytes: 25 });
    h.push(1);
    h.push(2);
    h.push(3);
    expect(h.taken()).toBe(3);
    // 30 bytes gathered: full.
    h.push(4);
    expect(h.taken()).toBe(3);
    h.requests[0].written();
    await h.settle();
    expect(h.requests.map((r) => r.numbers)).toEqual([[1], [2, 3, 4]]);
    expect(h.taken()).toBe(4);
  });

  it('keeps up to max_in_flight requests out, and acknowledges each batch as its request is written', async () => {
    const h = harness({ maxInFlight: 2 });
    h.push(1);
    h.push(2);
    h.push(3);
    h.push(4);
    expect(h.requests.map((r) => r.numbers)).toEqual([[1], [2]]);
    h.requests[1].written();
    await h.settle();
    expect(h.acked).toEqual([2]);
    expect(h.requests.map((r) => r.numbers)).toEqual([[1], [2], [3, 4]]);
    h.requests[0].written();
    h.requests[2].written();
    await h.settle();
    expect(h.acked).toEqual([2, 1, 3, 4]);
  });

  it('with linger, sends a request once it has waited that long or is full', async () => {
    const h = harness({ lingerMs: 5, batchBytes: 25 });
    h.push(1);
    h.push(2);
    expect(h.requests).toHaveLength(0);
    expect(h.timers).toHaveLength(1);
    h.timers.shift()!();
    expect(h.requests.map((r) => r.numbers)).toEqual([[1, 2]]);
    h.requests[0].written();
    await h.settle();
    // Full before its linger is over: it goes at once, and its timer is cancelled.
    h.push(3, 4);
    h.push(5);
    expect(h.requests.map((r) => r.numbers)).toEqual([[1, 2], [3, 4, 5]]);
    expect(h.timers).toHaveLength(0);
  });

  it('leaves the batches of a failed write and of later requests unacknowledged, and fails', async () => {
    const h = harness();
    h.push(1);
    h.push(2);
    h.requests[0].failed(new Error('stopped'));
    await h.settle();
    expect(h.acked).toEqual([]);
    expect(h.requests).toHaveLength(1);
    expect((h.state().error as Error).message).toBe('stopped');
  });

  it('when its input ends, sends what it gathered without lingering and completes once all is written', async () => {
    const h = harness({ lingerMs: 1000 });
    h.push(1);
    h.input.complete();
    expect(h.requests.map((r) => r.numbers)).toEqual([[1]]);
    expect(h.state().finished).toBe(false);
    h.requests[0].written();
    await h.settle();
    expect(h.acked).toEqual([1]);
    expect(h.state()).toMatchObject({ finished: true, completed: true });
  });
});
