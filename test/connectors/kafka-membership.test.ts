/**
 * The decisions of a consumer's membership watch (native/kafka/membership.ts)
 * on a fake clock, without a broker: when a member goes in doubt, what it
 * refuses meanwhile, where it resumes and what it may commit after; and the
 * fetch gate over the client library, on a stand-in consumer.
 */
import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { dropCommit, gateFetches, seek } from '../../native/kafka/library-internals.ts';
import { guardMembership } from '../../native/kafka/member-guard.ts';
import { MembershipWatch, type DoubtEvent } from '../../native/kafka/membership.ts';

const topic = 't';
const p0 = { topic, partition: 0 };
const p1 = { topic, partition: 1 };

function watchOnClock(sessionTimeoutMs = 6000) {
  const clock = { now: 1_000_000 };
  const watch = new MembershipWatch({ sessionTimeoutMs, now: () => clock.now });
  watch.joined([p0, p1]);
  return { watch, clock, advance: (ms: number) => (clock.now += ms) };
}

const offsets = (entries: [number, bigint][]) => entries.map(([partition, offset]) => ({ topic, partition, offset, leaderEpoch: 0 }));
const committedFrom = (table: Record<number, bigint>) => (_topic: string, partition: number) => table[partition] ?? -1n;

describe('membership watch', () => {
  it('stays a member while heartbeats are answered within a session', () => {
    const { watch, advance } = watchOnClock();
    for (let i = 0; i < 10; i++) {
      advance(5_999);
      expect(watch.check()).toBe(false);
      watch.answered();
    }
    expect(watch.state).toBe('member');
    expect(watch.admit(topic, 0, 0n, 9n, 10)).toBe(true);
    expect(watch.committable(offsets([[0, 10n]]))).toEqual(offsets([[0, 10n]]));
  });

  it('goes in doubt once a session timeout passes with no answer, once, and then refuses records and commits', () => {
    const { watch, advance } = watchOnClock();
    watch.admit(topic, 0, 0n, 99n, 100);
    advance(5_999);
    expect(watch.check()).toBe(false);
    const epoch = watch.epoch;
    advance(1);
    expect(watch.check()).toBe(true);
    expect(watch.check()).toBe(false);
    expect(watch.state).toBe('in_doubt');
    expect(watch.holding).toBe(true);
    expect(watch.epoch).toBeGreaterThan(epoch);
    expect(watch.admit(topic, 0, 100n, 149n, 50)).toBe(false);
    expect(watch.committable(offsets([[0, 100n]]))).toBeUndefined();
  });

  it('after the same generation answers again, resumes at the first refused record and commits again', () => {
    const { watch, advance } = watchOnClock();
    watch.admit(topic, 0, 0n, 99n, 100);
    advance(7_000);
    watch.check();
    watch.admit(topic, 0, 150n, 199n, 50);
    watch.admit(topic, 0, 100n, 149n, 50);
    watch.admit(topic, 1, 40n, 59n, 20);
    // A fetch sent before the doubt, answered in it: its 5 records were dropped unread.
    watch.voided(5);
    expect(watch.answered()).toBe(true);
    expect(watch.state).toBe('reconciling');
    expect(watch.admit(topic, 0, 200n, 209n, 10)).toBe(false);
    const resume = watch.resumePoints([p0, p1], committedFrom({ 0: 80n }));
    // p0: it handed over up to 99 and the group committed 80: records from 100 were never handed over.
    // p1: nothing handed over, nothing committed: from the first refused record.
    expect(resume).toEqual([
      { ...p0, offset: 100n, groupCommitted: 80n },
      { ...p1, offset: 40n, groupCommitted: -1n },
    ]);
    const summary = watch.reconciled(watch.epoch, resume);
    expect(summary).toMatchObject({ refused: 135, rejoined: false });
    expect(summary!.durationMs).toBe(0);
    expect(watch.state).toBe('member');
    expect(watch.admit(topic, 0, 100n, 149n, 50)).toBe(true);
    expect(watch.committable(offsets([[0, 80n], [0, 81n], [1, 10n]]))).toEqual(offsets([[0, 81n], [1, 10n]]));
  });

  it('after a rejoin, resumes where the group committed past its own records and never commits at or below that', () => {
    const { watch, advance } = watchOnClock();
    watch.admit(topic, 0, 0n, 99n, 100);
    watch.admit(topic, 1, 0n, 49n, 50);
    advance(6_000);
    watch.check();
    watch.admit(topic, 0, 100n, 199n, 100);
    advance(14_000);
    // The group gave p0 and p1 to another member meanwhile; p1 comes back, p0 does not.
    expect(watch.joined([p1])).toBe(true);
    const resume = watch.resumePoints([p1], committedFrom({ 1: 900n }));
    expect(resume).toEqual([{ ...p1, offset: 900n, groupCommitted: 900n }]);
    const summary = watch.reconciled(watch.epoch, resume);
    expect(summary).toMatchObject({ durationMs: 14_000, refused: 100, rejoined: true });
    // Its acknowledgement of p1 up to 50 is behind the group's 900: committing it would move the group back.
    expect(watch.committable(offsets([[1, 50n]]))).toEqual([]);
    expect(watch.committable(offsets([[1, 901n]]))).toEqual(offsets([[1, 901n]]));
    // p0 is no longer its: nothing to resume, nothing remembered.
    expect(watch.resumePoints([p0], committedFrom({}))).toEqual([]);
  });

  it('leaves a partition it knows nothing of to the client\'s start when the group has no offset either', () => {
    const { watch, advance } = watchOnClock();
    advance(6_000);
    watch.check();
    watch.answered();
    expect(watch.resumePoints([p0, p1], committedFrom({ 1: 5n }))).toEqual([{ ...p1, offset: 5n, groupCommitted: 5n }]);
  });

  it('abandons a reconciliation when a rejoin or another doubt overtakes it', () => {
    const { watch, advance } = watchOnClock();
    advance(6_000);
    watch.check();
    watch.answered();
    const first = watch.epoch;
    // The group rebalanced while the offsets of the generation before were being read.
    expect(watch.joined([p0])).toBe(true);
    expect(watch.reconciled(first, [])).toBeUndefined();
    expect(watch.state).toBe('reconciling');
    const second = watch.epoch;
    advance(6_000);
    expect(watch.check()).toBe(true);
    expect(watch.reconciled(second, [])).toBeUndefined();
    expect(watch.holding).toBe(true);
    watch.answered();
    expect(watch.reconciled(watch.epoch, [])).toMatchObject({ refused: 0 });
    expect(watch.holding).toBe(false);
  });

  it('times the silence from when the answered heartbeat was sent, as the coordinator does', () => {
    const { watch, clock, advance } = watchOnClock();
    const sentAt = clock.now;
    advance(2_500);
    // The answer took 2.5 s to come back: the coordinator's session restarted when the heartbeat reached it.
    watch.answered(sentAt);
    advance(3_500);
    expect(watch.check()).toBe(true);
  });

  it('begins the doubt a margin before the session runs out', () => {
    const clock = { now: 0 };
    const watch = new MembershipWatch({ sessionTimeoutMs: 6000, marginMs: 600, now: () => clock.now });
    watch.joined([p0]);
    clock.now = 5_399;
    expect(watch.check()).toBe(false);
    clock.now = 5_400;
    expect(watch.check()).toBe(true);
  });

  it('is not brought out of a doubt by the late answer of a heartbeat sent a session ago', () => {
    const { watch, clock, advance } = watchOnClock();
    const sentAt = clock.now;
    advance(9_000);
    expect(watch.check()).toBe(true);
    expect(watch.answered(sentAt)).toBe(false);
    expect(watch.state).toBe('in_doubt');
    expect(watch.answered()).toBe(true);
  });

  it('is never in doubt before its first join completes, however long it takes, and times the silence from the join', () => {
    const clock = { now: 1_000_000 };
    const watch = new MembershipWatch({ sessionTimeoutMs: 6000, now: () => clock.now });
    clock.now += 20_000;
    expect(watch.check()).toBe(false);
    expect(watch.state).toBe('member');
    expect(watch.joined([p0])).toBe(false);
    clock.now += 5_999;
    expect(watch.check()).toBe(false);
    clock.now += 1;
    expect(watch.check()).toBe(true);
  });

  it('lets an ordinary rebalance pass without a doubt', () => {
    const { watch, advance } = watchOnClock();
    watch.admit(topic, 0, 0n, 9n, 10);
    advance(3_000);
    expect(watch.joined([p1])).toBe(false);
    advance(5_000);
    expect(watch.check()).toBe(false);
    expect(watch.state).toBe('member');
    expect(watch.admit(topic, 1, 0n, 9n, 10)).toBe(true);
  });
});

describe('the fetch gate over the client library (native/kafka/library-internals.ts)', () => {
  type Callback = (error: Error | null, response?: unknown) => void;
  /** A stand-in for the library's consumer: `fetch` keeps each callback for the test to answer. */
  function fakeConsumer() {
    const sent: Callback[] = [];
    const consumer = { fetch: (_options: unknown, callback: Callback) => void sent.push(callback) };
    return { consumer: consumer as unknown as Parameters<typeof gateFetches>[0], sent, fetch: (callback: Callback) => (consumer.fetch as (o: unknown, c: Callback) => void)({}, callback) };
  }
  const withRecords = (n: number) => ({ responses: [{ partitions: [{ records: [{ records: Array.from({ length: n }, () => ({})) }] }] }] });

  it('passes fetches and answers through while not held', () => {
    const { consumer, sent, fetch } = fakeConsumer();
    gateFetches(consumer, { held: () => false, epoch: () => 0, voided: () => expect.unreachable() });
    const answers: unknown[] = [];
    fetch((_error, response) => answers.push(response));
    sent[0](null, withRecords(3));
    expect(answers).toEqual([withRecords(3)]);
  });

  it('holds fetches while held and answers them with no records on release', () => {
    const { consumer, sent, fetch } = fakeConsumer();
    let held = true;
    const gate = gateFetches(consumer, { held: () => held, epoch: () => 0, voided: () => {} });
    const answers: unknown[] = [];
    fetch((_error, response) => answers.push(response));
    expect(sent).toHaveLength(0);
    expect(answers).toEqual([]);
    held = false;
    gate.release();
    expect(answers).toEqual([{ responses: [] }]);
  });

  it('voids the answer (records or error) of a fetch sent before the epoch changed, counting its records', () => {
    const { consumer, sent, fetch } = fakeConsumer();
    let epoch = 1;
    let voided = 0;
    gateFetches(consumer, { held: () => false, epoch: () => epoch, voided: (n) => (voided += n) });
    const answers: [Error | null, unknown][] = [];
    fetch((error, response) => answers.push([error, response]));
    fetch((error, response) => answers.push([error, response]));
    epoch = 2;
    sent[0](null, withRecords(25));
    sent[1](new Error('connection lost'));
    expect(answers).toEqual([
      [null, { responses: [] }],
      [null, { responses: [] }],
    ]);
    expect(voided).toBe(25);
  });

  it('moves a stream position and empties a commit in flight', () => {
    const offsetsToFetch = new Map([['t:0', 500n]]);
    seek({ offsetsToFetch } as unknown as Parameters<typeof seek>[0], 't', 0, 120n);
    expect(offsetsToFetch.get('t:0')).toBe(120n);
    const offsets = [{ topic: 't', partition: 0, offset: 9n }];
    dropCommit(offsets);
    expect(offsets).toEqual([]);
  });
});

describe('the guard of a consumer (native/kafka/member-guard.ts), on a stand-in consumer', () => {
  type Callback = (error: Error | null, response?: unknown) => void;
  afterEach(() => {
    vi.useRealTimers();
  });

  /** A stand-in for the library's consumer: events, fetches answered by the test, commits kept in flight. */
  function standIn() {
    const events = new EventEmitter();
    const fetches: Callback[] = [];
    const commits: { options: { offsets: unknown[] }; done(): void }[] = [];
    const consumer = Object.assign(events, {
      generationId: 1,
      fetch: (_options: unknown, callback: Callback) => void fetches.push(callback),
      commit: (options: { offsets: unknown[] }) => new Promise<void>((done) => commits.push({ options, done })),
      listCommittedOffsets: async () => new Map<string, bigint[]>(),
    });
    return { consumer, fetches, commits, fetch: (callback: Callback) => consumer.fetch({}, callback) };
  }

  /**
   * A guarded stand-in on a clock of the test's (`now`), with fake timers
   * that never fire: only what the member does looks at the clock.
   * With `ownClock`, the guard's own (monotonic) clock instead.
   */
  function guarded({ ownClock = false } = {}) {
    vi.useFakeTimers({ now: 1_000_000 });
    const clock = { now: 1_000_000 };
    const fake = standIn();
    const doubts: DoubtEvent[] = [];
    const guard = guardMembership(fake.consumer as unknown as Parameters<typeof guardMembership>[0], { sessionTimeoutMs: 6000, assigned: () => {}, doubt: (event) => doubts.push(event), ...(!ownClock && { now: () => clock.now }) });
    fake.consumer.emit('consumer:group:join', { assignments: [{ topic, partitions: [0] }] });
    guard.watch({ offsetsToFetch: new Map() } as unknown as Parameters<typeof guard.watch>[0]);
    return { ...fake, guard, doubts, advance: (ms: number) => (clock.now += ms) };
  }

  it('sets no timer: the clock is looked at only when the member acts', () => {
    const { guard, fetch } = guarded();
    fetch(() => undefined);
    guard.admit(topic, 0, 0n, 9n, 10);
    expect(vi.getTimerCount()).toBe(0);
    guard.close();
  });

  it('is not put in doubt by a step of the wall clock (its clock is monotonic)', () => {
    const { guard, doubts } = guarded({ ownClock: true });
    vi.setSystemTime(Date.now() + 60_000);
    expect(guard.admit(topic, 0, 0n, 9n, 10)).toBe(true);
    expect(doubts).toEqual([]);
    guard.close();
  });

  it('refuses a fetched run handed to it after a silent session, before any timer looks at the clock', () => {
    const { guard, doubts, advance } = guarded();
    expect(guard.admit(topic, 0, 0n, 9n, 10)).toBe(true);
    advance(5_500);
    expect(guard.admit(topic, 0, 10n, 19n, 10)).toBe(false);
    expect(doubts).toEqual([{ phase: 'begin', silentMs: 5_500 }]);
    guard.close();
  });

  it('voids a fetch answer that arrives after a silent session (the process was stopped with it in flight)', () => {
    const { fetches, fetch, doubts, advance, guard } = guarded();
    const answers: unknown[] = [];
    fetch((_error, response) => answers.push(response));
    advance(8_000);
    fetches[0](null, { responses: [{ partitions: [{ records: [{ records: [{}, {}, {}] }] }] }] });
    expect(answers).toEqual([{ responses: [] }]);
    expect(doubts.map((d) => d.phase)).toEqual(['begin']);
    guard.close();
  });

  it('commits nothing after a silent session', async () => {
    const { guard, commits, advance } = guarded();
    advance(5_500);
    expect(await guard.commit(offsets([[0, 10n]]))).toBe(false);
    expect(commits).toHaveLength(0);
    guard.close();
  });

  it('times the silence from when the answered heartbeat was sent', () => {
    const { consumer, guard, advance } = guarded();
    const payload = { generationId: 1 };
    consumer.emit('consumer:heartbeat:start', payload);
    advance(3_000);
    consumer.emit('consumer:heartbeat:end', payload);
    advance(2_500);
    expect(guard.admit(topic, 0, 0n, 9n, 10)).toBe(false);
    guard.close();
  });

  it('voids a fetch sent before a silent session even when the group answers first (a link back after a cut)', async () => {
    const { consumer, fetches, fetch, doubts, advance, guard } = guarded();
    const answers: unknown[] = [];
    fetch((_error, response) => answers.push(response));
    // Cut for 20 s with the fetch in flight: nothing the member does looks at the clock meanwhile.
    advance(20_000);
    consumer.generationId = 2;
    consumer.emit('consumer:group:join', { assignments: [{ topic, partitions: [1] }] });
    fetches[0](null, { responses: [{ partitions: [{ records: [{ records: [{}, {}] }] }] }] });
    expect(answers).toEqual([{ responses: [] }]);
    expect(doubts[0]).toEqual({ phase: 'begin', silentMs: 20_000 });
    // The reconciliation reads the group's offsets (the stand-in answers at once): a few turns of the microtask queue.
    for (let turn = 0; turn < 20 && doubts.length < 2; turn++) await Promise.resolve();
    expect(doubts[1]).toMatchObject({ phase: 'end', rejoined: true, refused: 2 });
    guard.close();
  });

  it('empties a commit in flight when the group is joined under a new generation, so that its resend commits nothing', async () => {
    const { consumer, guard, commits } = guarded();
    const committed = guard.commit(offsets([[0, 10n]]));
    expect(commits).toHaveLength(1);
    expect(commits[0].options.offsets).toHaveLength(1);
    // Joined again under the same generation: the commit stands.
    consumer.emit('consumer:group:join', { assignments: [{ topic, partitions: [0] }] });
    expect(commits[0].options.offsets).toHaveLength(1);
    consumer.generationId = 2;
    consumer.emit('consumer:group:join', { assignments: [{ topic, partitions: [0] }] });
    expect(commits[0].options.offsets).toEqual([]);
    commits[0].done();
    // Nothing was committed: the caller keeps its acknowledgements for the next commit.
    expect(await committed).toBe(false);
    guard.close();
  });

  /** A guard over a stand-in built as `openConsumer` builds it: the first join and the stream are left to the test. */
  function unjoined(committed: Map<string, bigint[]> = new Map()) {
    const clock = { now: 1_000_000 };
    const fake = standIn();
    let reads = 0;
    fake.consumer.listCommittedOffsets = async () => (reads++, committed);
    const doubts: DoubtEvent[] = [];
    const guard = guardMembership(fake.consumer as unknown as Parameters<typeof guardMembership>[0], { sessionTimeoutMs: 6000, assigned: () => {}, doubt: (event) => doubts.push(event), now: () => clock.now });
    const stream = { offsetsToFetch: new Map<string, bigint>() };
    return { ...fake, guard, doubts, stream, reads: () => reads, open: () => guard.watch(stream as unknown as Parameters<typeof guard.watch>[0]), advance: (ms: number) => (clock.now += ms) };
  }

  it('logs no doubt and reconciles nothing when the first join takes longer than a session (a restart after a crash)', async () => {
    const { consumer, guard, doubts, reads, open, fetch, fetches, advance } = unjoined();
    // The coordinator waits out the crashed process's member, and the broker delays a new group's first rebalance.
    advance(6_500);
    consumer.emit('consumer:group:join', { assignments: [{ topic, partitions: [0] }] });
    for (let turn = 0; turn < 20; turn++) await Promise.resolve();
    open();
    expect(doubts).toEqual([]);
    expect(reads()).toBe(0);
    fetch(() => undefined);
    expect(fetches).toHaveLength(1);
    expect(guard.admit(topic, 0, 5n, 9n, 5)).toBe(true);
    guard.close();
  });

  it('waits for the stream when a doubt ends before it is open, then moves its positions and lets fetches go', async () => {
    const { consumer, guard, doubts, stream, reads, open, fetch, fetches, advance } = unjoined(new Map([[topic, [40n]]]));
    consumer.emit('consumer:group:join', { assignments: [{ topic, partitions: [0] }] });
    // Silent for a session before `consume()` handed the stream over; the group answers with a rejoin.
    advance(8_000);
    consumer.generationId = 2;
    consumer.emit('consumer:group:join', { assignments: [{ topic, partitions: [0] }] });
    for (let turn = 0; turn < 20; turn++) await Promise.resolve();
    expect(reads()).toBe(1);
    expect(doubts.map((d) => d.phase)).toEqual(['begin']);
    const answers: unknown[] = [];
    fetch((_error, response) => answers.push(response));
    expect(fetches).toHaveLength(0);
    open();
    for (let turn = 0; turn < 20 && doubts.length < 2; turn++) await Promise.resolve();
    expect(doubts[1]).toMatchObject({ phase: 'end', rejoined: true, resume: [{ topic, partition: 0, offset: 40n, groupCommitted: 40n }] });
    expect(stream.offsetsToFetch.get(`${topic}:0`)).toBe(40n);
    // The held fetch is answered (with nothing) and the next goes to the broker.
    expect(answers).toHaveLength(1);
    fetch(() => undefined);
    expect(fetches).toHaveLength(1);
    guard.close();
  });

  it('gives up a reconciliation waiting for the stream when the guard closes', async () => {
    const { consumer, guard, doubts, stream, open, advance } = unjoined(new Map([[topic, [40n]]]));
    consumer.emit('consumer:group:join', { assignments: [{ topic, partitions: [0] }] });
    advance(8_000);
    consumer.generationId = 2;
    consumer.emit('consumer:group:join', { assignments: [{ topic, partitions: [0] }] });
    for (let turn = 0; turn < 20; turn++) await Promise.resolve();
    guard.close();
    for (let turn = 0; turn < 20; turn++) await Promise.resolve();
    // A stream handed over after the close finds nothing waiting for it: the reconciliation was given up.
    open();
    for (let turn = 0; turn < 20; turn++) await Promise.resolve();
    expect(doubts.map((d) => d.phase)).toEqual(['begin']);
    expect(stream.offsetsToFetch.size).toBe(0);
  });
});
