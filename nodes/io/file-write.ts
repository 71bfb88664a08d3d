import { open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { from, mergeMap } from 'rxjs';
import { bytesText, checkOutputFile, defineOperator, ensureFolder, pathError, sinkBatches, z, type BytesItem } from '../../runtime/api.ts';

export default defineOperator({
  name: 'file.write',
  summary: 'Append records to a file, one per line.',
  doc: 'Writes each input to `path`, one per line: Bytes as their text, events as JSON. By default it appends, so a run restarted after a crash adds to what the last run wrote and nothing acknowledged is lost; `mode: truncate` starts the file afresh. A batch is acknowledged once the operating system has it (with `fsync: true`, once it is on disk). A record that cannot be written (a value too deep to serialise) goes to the dead-letter port and the others are written. A relative `path` is read from the pipeline file\'s folder; a path that cannot be written (a read-only place, a file where a folder should be) fails the node.',
  inputs: { in: { type: 'Any', doc: 'Bytes or events to write.' } },
  outputs: {},
  settings: z.object({
    path: z.string().min(1).meta({ description: 'The file to write; its folder is created if missing.', examples: ['out/stats.ndjson'] }),
    mode: z.enum(['append', 'truncate']).default('append').meta({ description: '`append` to the file, or `truncate` it when the node starts.' }),
    fsync: z.boolean().default(false).meta({ description: 'Flush to disk before acknowledging each batch.' }),
  }),
  example: { path: 'out/events.ndjson' },
  checkPaths(settings, resolvePath) {
    const problem = checkOutputFile('path', resolvePath(settings.path));
    return problem ? [problem] : [];
  },
  create(ctx) {
    const path = ctx.resolvePath(ctx.settings.path);
    // Opened once per start and closed however the sink ends, so a restart never leaks a descriptor.
    let opening: Promise<FileHandle> | undefined;
    const handle = (): Promise<FileHandle> =>
      (opening ??= (async function openOutput() {
        try {
          await ensureFolder(dirname(path));
          // `a+`: appends, and can read the last byte to check for a torn line.
          const file = await open(path, ctx.settings.mode === 'truncate' ? 'w' : 'a+');
          await endTornLine(file).catch(async (error: unknown) => {
            await file.close();
            throw error;
          });
          return file;
        } catch (error) {
          throw pathError(ctx.label, 'cannot open output', path, error);
        }
      })());
    const close = async (): Promise<void> => {
      const opened = opening;
      opening = undefined;
      if (opened) await (await opened.catch(() => undefined))?.close();
    };
    const sink = sinkBatches<unknown>(
      async function writeLines(items) {
        let text = '';
        for (const item of items) text += lineOf(item) + '\n';
        const file = await handle();
        const { bytesWritten } = await file.write(text);
        ctx.metrics.bytes(bytesWritten);
        if (ctx.settings.fsync) await file.datasync();
      },
      async function openAndClose() {
        // A run with no records still leaves the file (created or truncated), as it always has.
        await handle();
        await close();
      },
      { ctx, isolate: true, finalize: close },
    );
    // Open when the node starts (`truncate` means then, and a path that cannot be written fails the node at once).
    return function fileWriteNode(input) {
      return from(handle()).pipe(mergeMap(() => sink(input)));
    };
  },
});

function lineOf(item: unknown): string {
  const bytes = item as BytesItem;
  if (bytes !== null && typeof bytes === 'object' && (typeof bytes.text === 'string' || Buffer.isBuffer(bytes.data))) return bytesText(bytes);
  return JSON.stringify(item);
}

/**
 * A run killed in the middle of a write can leave a last line without its
 * newline; appending after it would glue the next record to it, losing both.
 * The torn part is ended with a newline (it stays, as a line that does not
 * parse), so every record appended after it is a line of its own.
 */
async function endTornLine(file: FileHandle): Promise<void> {
  const { size } = await file.stat();
  if (size === 0) return;
  const last = Buffer.alloc(1);
  await file.read(last, 0, 1, size - 1);
  if (last[0] !== 10) await file.write('\n');
}
