import { Observable } from 'rxjs';
import { compileExpression, defineOperator, seededRandom, expression, toPlain, z, type Batch, type EventRecord } from '../../runtime/api.ts';


const batchLimit = 1024;

export default defineOperator({
  name: 'generate',
  summary: 'Synthetic events from a template, for demos and tests.',
  doc: 'Emits events built from `fields`, a map of field names to CEL expressions evaluated per event with the variables `i` (the event\'s sequence number from 0), `now` (milliseconds since the epoch), `random` (a double in [0, 1)) and `random_int` (an integer in [0, 2^31)), both drawn from a generator seeded by `seed` so runs repeat. Stops after `count` events, or runs until stopped; `rate` caps events per second, otherwise it emits as fast as downstream accepts.',
  inputs: {},
  outputs: { out: { type: 'Event', doc: 'The generated events.' } },
  settings: z.object({
    count: z.number().int().nonnegative().optional().meta({ description: 'How many events to emit; absent means until stopped.', examples: [1000] }),
    rate: z.number().positive().optional().meta({ description: 'Events per second at most; absent means as fast as downstream accepts.', examples: [100] }),
    fields: z.record(z.string(), expression()).default({ i: 'i' }).meta({ description: 'Field name to CEL expression over `i`, `now`, `random`, `random_int`.', examples: [{ device: '"dev-" + string(random_int % 10)', value: 'random * 100.0' }] }),
    seed: z.number().int().default(1).meta({ description: 'Seed of the random generator.' }),
  }),
  example: { count: 100, rate: 10, fields: { device: '"dev-" + string(random_int % 4)', value: 'random * 40.0 - 5.0' } },
  create(ctx) {
    const { count, rate, seed } = ctx.settings;
    const fields = Object.entries(ctx.settings.fields).map(([name, text]) => [name, compileExpression(text)] as const);
    const random = seededRandom(seed);
    return function generateNode() {
      return new Observable<Batch>((subscriber) => {
        let i = 0;
        let stopped = false;
        let cancelTimer: (() => void) | undefined;
        const limit = count ?? Infinity;
        // With a rate, wake every `interval` ms and emit the events due by the
        // clock since the last wake (timers fire late, so a fixed count per
        // tick falls short of the rate); a stall catches up 100 ms at most.
        const interval = rate ? Math.max(10, 1000 / rate) : 0;
        const catchUp = rate ? Math.max(1, rate / 10) : 0;
        let owed = 0;
        let paidUntil = rate ? ctx.now() - interval : 0;

        const makeBatch = (size: number): Batch => {
          const items: EventRecord[] = new Array(size);
          const now = ctx.now();
          for (let k = 0; k < size; k++, i++) {
            const vars = { i, now, random: random(), random_int: Math.floor(random() * 2147483648) };
            const record: EventRecord = {};
            for (const [name, expr] of fields) record[name] = toPlain(expr(vars));
            items[k] = record;
          }
          return { items, ack: ctx.newAck() };
        };

        const finish = (): void => {
          stopped = true;
          cancelTimer?.();
          subscriber.complete();
        };

        const step = (): void => {
          cancelTimer = undefined;
          // Yield to the event loop now and then so timers and I/O run.
          let turns = 0;
          while (!stopped) {
            if (++turns > 16) {
              setImmediate(step);
              return;
            }
            if (i >= limit || ctx.signal.aborted) return finish();
            const wait = ctx.ready();
            if (wait) {
              wait.then(step, (error: unknown) => subscriber.error(error));
              return;
            }
            if (rate) {
              const now = ctx.now();
              owed = Math.min(owed + (rate * (now - paidUntil)) / 1000, catchUp);
              paidUntil = now;
              const size = Math.min(Math.floor(owed), limit - i);
              owed -= size;
              if (size > 0) subscriber.next(makeBatch(size));
              cancelTimer = ctx.schedule(interval, step);
              return;
            }
            try {
              subscriber.next(makeBatch(Math.min(batchLimit, limit - i)));
            } catch (error) {
              subscriber.error(error);
              return;
            }
          }
        };
        const onAbort = (): void => {
          if (!stopped) finish();
        };
        ctx.signal.addEventListener('abort', onAbort);
        queueMicrotask(step);
        return () => {
          stopped = true;
          cancelTimer?.();
          ctx.signal.removeEventListener('abort', onAbort);
        };
      });
    };
  },
});
