/**
 * How V8 collects a process that only checks pipeline files (`streams
 * validate`). Almost everything a check allocates (the file's data, a
 * record per node, its settings and types) lives until the end, so a young
 * generation has little garbage to free: V8's default lets it grow to 64 MB
 * semi-spaces (on Node 24; 16 on Node 20), and the copies it keeps there at
 * the peak are memory spent for nothing. Held at its starting size (V8 reads
 * the growth factor at each collection, so setting it at run time takes
 * effect; the size flags themselves are read only at start), a 140,000-node
 * file peaks at 207 MiB instead of 366, at 0.90x the CPU time (median of 7,
 * in turn, load 2.4-2.8; `bench/check-large.ts`). `run` keeps V8's default:
 * its records die young.
 */
import v8 from 'node:v8';

const flag = '--semi-space-growth-factor=1';

/**
 * The V8 flag a checking process sets, unless the user chose how the young
 * generation grows (`--semi-space-growth-factor` or `--min-semi-space-size`,
 * either spelling; Node takes them only on its command line): then their
 * choice stands. A `--max-semi-space-size` (the README's advice for `run`,
 * also taken from NODE_OPTIONS) only caps the growth, and the flag still
 * holds it below that cap.
 */
export function youngGenerationFlag(execArgv: readonly string[], nodeOptions = ''): string | undefined {
  const chosen = [...execArgv, ...nodeOptions.split(/\s+/)].some((arg) => /semi[-_]space[-_]growth[-_]factor|min[-_]semi[-_]space[-_]size/.test(arg));
  return chosen ? undefined : flag;
}

/**
 * Holds the young generation at its size for the rest of the process (see
 * {@link youngGenerationFlag}). Node calls setting V8 flags after start
 * undefined behaviour in general; this one V8 reads at each collection, and
 * the process only checks files and exits.
 */
export function holdYoungGeneration(): void {
  const wanted = youngGenerationFlag(process.execArgv, process.env.NODE_OPTIONS);
  if (wanted) v8.setFlagsFromString(wanted);
}
