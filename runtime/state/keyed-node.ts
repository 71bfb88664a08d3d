/**
 * A keyed, stateful node with `parallelism`, run with one state per input
 * partition (docs/keyed-state.md). Batches that carry an `origin` (a Kafka
 * partition) go to that partition's own instance of the node, made by the
 * node's `create` with the partition's saved state as `ctx.restored`; other
 * batches go to the node's plain instance. Each partition's state is saved
 * to the state store at checkpoints, with the partition's next offset, and
 * only then are the acknowledgements it covers released, so the source
 * never commits an offset that the stored state does not cover. A member
 * that takes over a partition loads its state and skips the records below
 * its position, which the state already holds.
 */
import { Observable, Subject, type Subscription } from 'rxjs';
import { Ack } from '../ack.ts';
import { carriesState, type Batch, type NodeContext, type NodeFunction, type SnapshotOptions, type StopReason } from '../types.ts';
import { reasonOf } from '../failure.ts';
import type { StateStore } from './store.ts';
import { partitionEvents, topicOf } from './partition-events.ts';

/** Where a keyed node keeps its partitions' state, and how often it checkpoints. */
export interface PartitionStateOptions {
  store: StateStore;
  /** The pipeline's name: the first part of every saved partition's key. */
  pipeline: string;
  /** Milliseconds between checkpoints (default 1000). */
  checkpointMs?: number;
}

/** What `keyedNode` runs. */
export interface KeyedNodeOptions {
  /** The node's own context (the plain instance's). */
  ctx: NodeContext<any>;
  /** The function of the plain instance, already made by `create` with `ctx`. */
  plain: NodeFunction;
  /** Makes one more instance, for a partition. */
  create(ctx: NodeContext<any>): NodeFunction;
  state: PartitionStateOptions;
}

/** One partition's instance of the node. */
interface PartitionRun {
  name: string;
  input: Subject<Batch>;
  subscription?: Subscription;
  save?: () => unknown;
  holds?: SnapshotOptions['holds'];
  /** Batches that arrived while its state was loading. */
  queue: Batch[] | undefined;
  /** Next offset after the last record folded (-1: none yet). */
  position: number;
  /** Records below this were in the restored state: skipped. */
  skipBelow: number;
  /** Input acks this node holds until a checkpoint covers them. */
  held: Ack[];
  /** Output batches not yet acknowledged downstream: a checkpoint waits for none. */
  unacked: number;
  dirty: boolean;
  saving: boolean;
  completed: boolean;
}

const defaultCheckpointMs = 1000;
/** On a drain, how long the last checkpoint waits for outputs to be acknowledged. */
const finalWaitMs = 10_000;

/** The node function of a keyed node with per-partition state. */
export function keyedNode(options: KeyedNodeOptions): NodeFunction {
  const { ctx, plain, create, state } = options;
  const every = state.checkpointMs ?? defaultCheckpointMs;
  return function keyedFunction(input) {
    return new Observable<Batch>((subscriber) => {
      const runs = new Map<string, PartitionRun>();
      /** Partitions another member took: their late batches are not ours. */
      const gone = new Set<string>();
      const plainInput = new Subject<Batch>();
      let open = 1;
      let inputEnded = false;
      let failed = false;

      function fail(error: unknown): void {
        if (failed) return;
        failed = true;
        subscriber.error(error);
      }
      function instanceEnded(): void {
        open -= 1;
        if (open === 0 && inputEnded) {
          cancelTimer();
          subscriber.complete();
        }
      }
      /** An output batch whose acknowledgement the partition's checkpoint waits for. */
      function tracked(run: PartitionRun, batch: Batch): Batch {
        run.unacked += 1;
        const inner = batch.ack;
        const ack = new Ack(
          function outputAcknowledged() {
            run.unacked -= 1;
            inner.release();
          },
          () => inner.settle(),
        );
        return { ...batch, ack };
      }

      const plainSubscription = plain(plainInput).subscribe({ next: (b) => subscriber.next(b), error: fail, complete: instanceEnded });

      function start(name: string): PartitionRun {
        const run: PartitionRun = { name, input: new Subject<Batch>(), queue: [], position: -1, skipBelow: -1, held: [], unacked: 0, dirty: false, saving: false, completed: false };
        runs.set(name, run);
        open += 1;
        state.store.loadPartition(state.pipeline, `${ctx.node}/${name}`).then(
          (saved) => {
            // Dropped while loading (the partition moved), or the node stopped: nothing to start.
            if (runs.get(name) !== run || subscriber.closed) return;
            if (saved) run.position = run.skipBelow = saved.position;
            const partitionCtx: NodeContext<any> = {
              ...ctx,
              restored: saved?.state,
              snapshot(save, snapshotOptions) {
                run.save = save;
                run.holds = snapshotOptions?.holds;
              },
              emit: (port, batch) => ctx.emit(port, tracked(run, batch)),
              stopReason: () => stopReasonOf(run),
            };
            try {
              run.subscription = create(partitionCtx)(run.input).subscribe({
                next: (b) => subscriber.next(tracked(run, b)),
                error: fail,
                complete: () => {
                  run.completed = true;
                  instanceEnded();
                },
              });
            } catch (error) {
              fail(error);
              return;
            }
            if (saved) ctx.log.info({ partition: name, position: saved.position }, `${ctx.label}: restored the state of partition ${name} at offset ${saved.position}`);
            const queued = run.queue ?? [];
            run.queue = undefined;
            for (const batch of queued) feed(run, batch);
            if (inputEnded) void finish(run);
          },
          (error: unknown) => fail(new Error(`${ctx.label}: cannot load the state of partition ${name}: ${reasonOf(error)}`, { cause: error })),
        );
        return run;
      }

      function feed(run: PartitionRun, batch: Batch): void {
        const offsets = batch.origin!.offsets;
        const last = offsets[offsets.length - 1];
        if (last < run.skipBelow) {
          // Already in the restored state.
          batch.ack.release();
          return;
        }
        if (offsets[0] < run.skipBelow) {
          const items: unknown[] = [];
          const kept: number[] = [];
          for (let i = 0; i < offsets.length; i++) {
            if (offsets[i] < run.skipBelow) continue;
            items.push(batch.items[i]);
            kept.push(offsets[i]);
          }
          batch = { ...batch, items, origin: { partition: run.name, offsets: kept } };
        }
        batch.ack.retain();
        run.held.push(batch.ack);
        run.position = last + 1;
        run.dirty = true;
        run.input.next(batch);
      }

      /** Saves the partition's state when it has changed and nothing it emitted waits downstream. */
      async function checkpoint(run: PartitionRun): Promise<void> {
        if (!run.dirty || run.saving || run.unacked > 0 || run.queue || !run.save || runs.get(run.name) !== run) return;
        run.saving = true;
        run.dirty = false;
        const snapshot = { position: run.position, state: run.save() };
        // Taken with the snapshot: acks of records folded after it stay held.
        const covered = [...run.held.splice(0), ...(run.holds?.() ?? [])];
        try {
          const stored = await state.store.savePartition(state.pipeline, `${ctx.node}/${run.name}`, snapshot);
          if (stored) {
            for (const ack of covered) ack.release();
          } else {
            // A member that had the partition saved further along (a late save): held until this one's state passes it.
            run.held.unshift(...covered);
            run.dirty = true;
            ctx.log.warn({ partition: run.name, position: snapshot.position }, `${ctx.label}: partition ${run.name} has a state further along in the store; kept until this member's passes it`);
          }
        } catch (error) {
          // Held again until a later checkpoint, which covers these records too, is stored.
          run.held.unshift(...covered);
          run.dirty = true;
          ctx.log.warn({ partition: run.name, error: reasonOf(error) }, `${ctx.label}: saving the state of partition ${run.name} failed; trying again at the next checkpoint`);
        } finally {
          run.saving = false;
        }
      }

      /** Why a partition's instance stops: a drain it checkpointed keeps its state (suspend) instead of flushing it. */
      function stopReasonOf(run: PartitionRun): StopReason {
        const reason = ctx.stopReason();
        // Not stored: flush (windows emit what they hold) rather than release acks no stored state covers.
        if (carriesState(reason) || reason === 'shutdown') return run.dirty ? 'shutdown' : 'suspend';
        return reason;
      }

      /** The input ended: checkpoint (after a drain, not at the end of the sources) and end the instance. */
      async function finish(run: PartitionRun): Promise<void> {
        if (run.queue) return;
        const reason = ctx.stopReason();
        if (carriesState(reason) || reason === 'shutdown') {
          const started = ctx.now();
          while ((run.unacked > 0 || run.saving) && ctx.now() - started < finalWaitMs) await new Promise<void>((resolve) => ctx.schedule(20, resolve));
          await checkpoint(run);
        }
        run.input.complete();
      }

      let cancelTick: (() => void) | undefined;
      function tick(): void {
        for (const run of runs.values()) void checkpoint(run);
        cancelTick = ctx.schedule(every, tick);
      }
      function cancelTimer(): void {
        cancelTick?.();
        cancelTick = undefined;
      }
      cancelTick = ctx.schedule(every, tick);

      const unlisten = partitionEvents(ctx).listen({
        revoking(topics) {
          for (const run of runs.values()) if (topics.includes(topicOf(run.name))) void checkpoint(run);
        },
        assigned(topics, held) {
          for (const name of held) gone.delete(name);
          for (const run of [...runs.values()]) {
            if (!topics.includes(topicOf(run.name)) || held.has(run.name)) continue;
            // Another member has it now and resumes from the stored state; what this one holds is dropped unsaved.
            runs.delete(run.name);
            gone.add(run.name);
            run.subscription?.unsubscribe();
            if (!run.completed) instanceEnded();
            ctx.log.info({ partition: run.name }, `${ctx.label}: partition ${run.name} moved to another member; its state there resumes from the store`);
          }
        },
      });

      const inputSubscription = input.subscribe({
        next(batch) {
          const name = batch.origin?.partition;
          if (name === undefined || batch.origin!.offsets.length === 0) {
            plainInput.next(batch);
            return;
          }
          if (gone.has(name)) {
            batch.ack.release();
            return;
          }
          const run = runs.get(name) ?? start(name);
          if (run.queue) run.queue.push(batch);
          else feed(run, batch);
        },
        error: fail,
        complete() {
          inputEnded = true;
          plainInput.complete();
          for (const run of runs.values()) void finish(run);
        },
      });

      return function stopKeyed() {
        cancelTimer();
        unlisten();
        inputSubscription.unsubscribe();
        plainSubscription.unsubscribe();
        for (const run of runs.values()) run.subscription?.unsubscribe();
      };
    });
  };
}
