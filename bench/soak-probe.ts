/**
 * Loaded into the soaked `streams run` process with `node --import`: every
 * `SOAK_PROBE_MS` milliseconds it writes the process's memory as one JSON
 * line to file descriptor `SOAK_PROBE_FD`, a pipe `bench/soak.ts` reads.
 *
 * It reads `process.memoryUsage()`, and the heap used after each full
 * collection the run makes anyway: no forced GC, no allocation beyond
 * one short string a sample, and an unref'd timer, so the run it measures
 * behaves as it would without it (and still ends on its own).
 */
import { writeSync } from 'node:fs';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';

const fd = Number(process.env.SOAK_PROBE_FD);
const every = Number(process.env.SOAK_PROBE_MS);

if (Number.isInteger(fd) && every > 0) {
  // The heap in use just after the last full (mark-sweep) collection: the live heap, without the garbage
  // that makes a plain `heapUsed` swing by a hundred MB between two samples.
  let heapAfterGc = NaN;
  const collections = new PerformanceObserver(function afterCollection(list) {
    for (const entry of list.getEntries()) {
      if ((entry as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) heapAfterGc = getHeapStatistics().used_heap_size;
    }
  });
  collections.observe({ entryTypes: ['gc'] });
  const timer = setInterval(function sampleMemory() {
    const { rss, heapUsed, heapTotal, external, arrayBuffers } = process.memoryUsage();
    try {
      writeSync(fd, `${JSON.stringify({ at: Date.now(), rss, heapUsed, heapAfterGc, heapTotal, external, arrayBuffers })}\n`);
    } catch {
      // The reader is gone (the bench was stopped): stop sampling, leave the run alone.
      clearInterval(timer);
    }
  }, every);
  timer.unref();
}
