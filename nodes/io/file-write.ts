import { open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { mkdir } from 'node:fs/promises';
import { bytesText, defineOperator, sinkBatches, z, type BytesItem } from '../../runtime/api.ts';

export default defineOperator({
  name: 'file.write',
  summary: 'Append records to a file, one per line.',
  doc: 'Writes each input to `path`, one per line: Bytes as their text, events as JSON. By default it appends, so a run restarted after a crash adds to what the last run wrote and nothing acknowledged is lost; `mode: truncate` starts the file afresh. A batch is acknowledged once the operating system has it (with `fsync: true`, once it is on disk).',
  inputs: { in: { type: 'Any', doc: 'Bytes or events to write.' } },
  outputs: {},
  settings: z.object({
    path: z.string().min(1).meta({ description: 'The file to write; its folder is created if missing.', examples: ['out/stats.ndjson'] }),
    mode: z.enum(['append', 'truncate']).default('append').meta({ description: '`append` to the file, or `truncate` it when the node starts.' }),
    fsync: z.boolean().default(false).meta({ description: 'Flush to disk before acknowledging each batch.' }),
  }),
  example: { path: 'out/events.ndjson' },
  create(ctx) {
    let handle: FileHandle | undefined;
    const opening = (async () => {
      await mkdir(dirname(ctx.settings.path), { recursive: true });
      handle = await open(ctx.settings.path, ctx.settings.mode === 'truncate' ? 'w' : 'a');
    })();
    return sinkBatches<unknown>(
      async function writeLines(items) {
        if (!handle) await opening;
        let text = '';
        for (const item of items) text += lineOf(item) + '\n';
        const { bytesWritten } = await handle!.write(text);
        ctx.metrics.bytes(bytesWritten);
        if (ctx.settings.fsync) await handle!.datasync();
      },
      async function closeFile() {
        await opening;
        await handle?.close();
      },
    );
  },
});

function lineOf(item: unknown): string {
  const bytes = item as BytesItem;
  if (bytes !== null && typeof bytes === 'object' && (typeof bytes.text === 'string' || Buffer.isBuffer(bytes.data))) return bytesText(bytes);
  return JSON.stringify(item);
}
