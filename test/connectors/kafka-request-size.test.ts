/**
 * The producer cuts a write into requests the broker takes: a request's
 * records for one partition become one record batch, which the broker
 * refuses for good above its `message.max.bytes`. So a batch of media
 * packets holding several keyframes is written as several requests, in
 * order, instead of being retried for ever.
 */
import { describe, expect, it } from 'vitest';
import type { OutgoingMessage } from '../../native/kafka/client.ts';
import { requestBytesLimit, requestsOf } from '../../native/kafka/request-size.ts';

const message = (id: number, bytes: number, key = 'cam'): OutgoingMessage => ({ topic: 't', key: Buffer.from(key), value: Buffer.alloc(bytes, id % 256), headers: new Map([[Buffer.from('n'), Buffer.from(String(id))]]) });
const ids = (requests: (readonly OutgoingMessage[])[]) => requests.flat().map((m) => Number(m.headers!.get([...m.headers!.keys()][0])!.toString()));
const size = (request: readonly OutgoingMessage[]) => request.reduce((sum, m) => sum + m.key!.length + m.value!.length + 1 + m.headers!.values().next().value!.length, 0);

describe('produce requests', () => {
  it('keeps a write under the limit as one request, the list itself', () => {
    const messages = Array.from({ length: 100 }, (_, i) => message(i, 1000));
    const requests = requestsOf(messages);
    expect(requests).toHaveLength(1);
    expect(requests[0]).toBe(messages);
    expect(requestsOf([])).toEqual([]);
  });

  it('cuts a write of keyframes into requests under the limit, in order, a message larger than it alone', () => {
    // 20 streams starting at once: 20 keyframes of 120 KB, audio between, and one 700 KB oddity.
    const messages = Array.from({ length: 41 }, (_, i) => (i === 20 ? message(i, 700_000) : message(i, i % 2 === 0 ? 120_000 : 360, `cam${i}`)));
    const requests = requestsOf(messages);
    expect(ids(requests)).toEqual(messages.map((_, i) => i));
    for (const request of requests) expect(request.length === 1 || size(request) <= requestBytesLimit).toBe(true);
    expect(requests.find((r) => r.some((m) => m.value!.length === 700_000))).toHaveLength(1);
    expect(requests.length).toBeGreaterThanOrEqual(Math.ceil((10 * 120_000) / requestBytesLimit) + 1);
  });

  it("counts each record's own overhead in a batch, so 60,000 records of 8 bytes do not make one request past the limit", () => {
    const messages = Array.from({ length: 60_000 }, (_, i) => ({ topic: 't', value: Buffer.from(String(i).padStart(8, '0')) }));
    const requests = requestsOf(messages);
    expect(requests.length).toBeGreaterThan(1);
    expect(requests.flat()).toEqual(messages);
    for (const request of requests) expect(request.length * (8 + 31)).toBeLessThanOrEqual(requestBytesLimit);
  });
});
