import { bytesText, defineOperator, sinkBatches, z, type BytesItem } from '../../runtime/api.ts';

export default defineOperator({
  name: 'stdout',
  summary: 'Print records to standard output, one per line.',
  doc: 'Prints each input on its own line of standard output: events as JSON (or pretty-printed with `pretty`), Bytes as their text. Waits when the terminal or pipe is slow, so backpressure reaches the sources.',
  inputs: { in: { type: 'Any', doc: 'Events or bytes to print.' } },
  outputs: {},
  settings: z.object({
    pretty: z.boolean().default(false).meta({ description: 'Indent events\' JSON by two spaces.' }),
  }),
  create(ctx) {
    const indent = ctx.settings.pretty ? 2 : undefined;
    return sinkBatches<unknown>(function printLines(items) {
      let text = '';
      for (const item of items) {
        const bytes = item as BytesItem;
        const isBytes = bytes !== null && typeof bytes === 'object' && (typeof bytes.text === 'string' || Buffer.isBuffer(bytes.data));
        text += (isBytes ? bytesText(bytes) : JSON.stringify(item, undefined, indent)) + '\n';
      }
      ctx.metrics.bytes(Buffer.byteLength(text));
      if (process.stdout.write(text)) return;
      return new Promise<void>((resolve) => process.stdout.once('drain', resolve));
    }, undefined, { ctx, isolate: true });
  },
});
