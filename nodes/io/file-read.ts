import { createReadStream } from 'node:fs';
import { open, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Observable } from 'rxjs';
import { bytesText, checkInputFile, checkOutputFile, defineOperator, ensureFolder, pathError, z, type Ack, type Batch, type BytesItem, type EventRecord, type NodeContext, type FieldType, type NodeFunction, type PathProblem } from '../../runtime/api.ts';
import { compileJsonDecoder, parseJsonObject, type JsonDecoder } from '../events/json-objects.ts';

const formats = ['lines', 'ndjson', 'bytes'] as const;

export default defineOperator({
  name: 'file.read',
  summary: 'Read a file as lines, JSON lines or raw chunks.',
  doc: 'Reads `path` (relative to the pipeline file\'s folder) from the start (or from its checkpoint) to the end, then completes. A missing input or a folder fails the node. `lines` emits one Bytes item per line (without the newline), `ndjson` parses each non-empty line as a JSON object (a line that is not goes to the dead-letter port), `bytes` emits raw chunks. With `checkpoint`, the byte offset just past the last line that every sink downstream has acknowledged is kept in that file, so a run that is killed resumes there: every line is delivered at least once. Reading pauses while downstream is full. Followed by a `decode.json` as its only consumer, in a run that cannot reload (`streams run` without `--watch` or `--ui`), the two run as one node: lines are parsed as they are split, with the same records, dead letters and counts of `decode.json`.',
  inputs: {},
  outputs: { out: { type: 'Bytes', doc: 'Lines or chunks; events with `format: ndjson`.' } },
  settings: z.object({
    path: z.string().min(1).meta({ description: 'The file to read.', examples: ['data/readings.ndjson'] }),
    format: z.enum(formats).default('lines').meta({ description: '`lines`, `ndjson` or `bytes`.' }),
    checkpoint: z.string().min(1).optional().meta({ description: 'A file that keeps the position of the last acknowledged line, to resume after a crash.', examples: ['state/readings.offset'] }),
    chunk_size: z.number().int().min(1024).max(16 * 1024 * 1024).default(64 * 1024).meta({ description: 'Bytes read at a time.' }),
  }),
  example: { path: 'data/events.ndjson', format: 'ndjson' },
  checkPaths(settings, resolvePath) {
    const problems: (PathProblem | undefined)[] = [checkInputFile('path', resolvePath(settings.path))];
    if (settings.checkpoint) problems.push(checkOutputFile('checkpoint', resolvePath(settings.checkpoint)));
    return problems.filter((p): p is PathProblem => p !== undefined);
  },
  infer(settings) {
    return settings.format === 'ndjson' ? { out: { kind: 'event' } } : {};
  },
  create(ctx) {
    return fileReader(ctx, undefined);
  },
  fuse: {
    // Its lines parsed as they are split: no Bytes item per line, no hop between two nodes.
    'decode.json'(ctx, decodeCtx: NodeContext<{ schema?: Record<string, FieldType> }>) {
      const decode = compileJsonDecoder(decodeCtx.settings.schema);
      return fileReader(ctx, { decode, fail: (item, error, ack) => decodeCtx.fail(item, error, ack) });
    },
  },
});

type FileReadSettings = { path: string; format: (typeof formats)[number]; checkpoint?: string; chunk_size: number };

/**
 * The JSON decoding of a `decode.json` fused into this node: each item is
 * parsed as it is made, and one that does not parse goes to that node's
 * dead letters, as the Bytes item it would have been.
 */
interface FusedDecoder {
  decode: JsonDecoder;
  fail(item: BytesItem, error: unknown, ack: Ack): void;
}

/** The node function of `file.read`, alone or with a `decode.json` fused into it (`decoder`). */
function fileReader(ctx: NodeContext<FileReadSettings>, decoder: FusedDecoder | undefined): NodeFunction {
  const path = ctx.resolvePath(ctx.settings.path);
  return function fileReadNode() {
    return new Observable<Batch>((subscriber) => {
      let cancelled = false;
      const run = async (): Promise<void> => {
        const start = checkpoint?.position ?? 0;
        // Opened first, so a missing file or a folder is a located, permanent failure of the node.
        const fd = await open(path, 'r').catch((error: unknown) => {
          throw pathError(ctx.label, 'cannot open input', path, error);
        });
        const isFolder = await fd.stat().then((found) => found.isDirectory(), () => false);
        if (isFolder) {
          await fd.close();
          throw pathError(ctx.label, 'cannot read input', path, Object.assign(new Error('is a folder'), { code: 'EISDIR', path }));
        }
        const stream = createReadStream('', { fd, start, highWaterMark: ctx.settings.chunk_size });
        ctx.signal.addEventListener('abort', () => stream.destroy(), { once: true });
        let carry: Buffer | undefined;
        let offset = start; // byte offset of the first unread byte of `carry` or the next chunk
        try {
          for await (const chunk of stream as AsyncIterable<Buffer>) {
            if (cancelled) return;
            const wait = ctx.ready();
            if (wait) await wait;
            ctx.metrics.bytes(chunk.length);
            if (ctx.settings.format === 'bytes') {
              offset += chunk.length;
              emitChunk(chunk, offset);
              continue;
            }
            const buffer = carry ? Buffer.concat([carry, chunk]) : chunk;
            const lastNewline = buffer.lastIndexOf(10);
            if (lastNewline < 0) {
              carry = buffer;
              continue;
            }
            carry = lastNewline + 1 < buffer.length ? buffer.subarray(lastNewline + 1) : undefined;
            offset += lastNewline + 1;
            emitLines(buffer, lastNewline + 1, offset);
          }
          if (carry && carry.length > 0 && !ctx.signal.aborted) {
            offset += carry.length;
            emitLines(carry, carry.length, offset);
          }
        } finally {
          stream.destroy();
        }
        await checkpoint?.flush();
      };
      /** Emits a batch acknowledged as one up to `endOffset`; one that is left empty is acknowledged at once. */
      const emit = (endOffset: number, fill: (ack: Ack) => unknown[]): void => {
        const ack = ctx.newAck(checkpoint?.track(endOffset));
        const items = fill(ack);
        // Records a fused decoder sent to its dead letters hold `ack` until they are acknowledged there.
        if (items.length === 0) ack.release();
        else subscriber.next({ items, ack });
      };
      const emitLines = (buffer: Buffer, end: number, endOffset: number): void => {
        emit(endOffset, (ack) => splitLines(ctx, buffer, end, decoder, ack));
      };
      const emitChunk = (chunk: Buffer, endOffset: number): void => {
        emit(endOffset, (ack) => {
          if (!decoder) return [{ data: chunk }];
          const item: BytesItem = { data: chunk };
          try {
            return [decoder.decode(bytesText(item))];
          } catch (error) {
            decoder.fail(item, error, ack);
            return [];
          }
        });
      };
      let checkpoint: Checkpoint | undefined;
      const boot = async (): Promise<void> => {
        if (ctx.settings.checkpoint) checkpoint = await openCheckpoint(ctx.resolvePath(ctx.settings.checkpoint), ctx);
      };
      boot()
        .then(run)
        .then(() => subscriber.complete(), (error: unknown) => subscriber.error(error));
      return () => {
        cancelled = true;
      };
    });
  };
}

/**
 * Splits `buffer[0, end)` into lines (without `\n` or `\r\n`); ndjson lines
 * are parsed, bad ones sent to the dead-letter port; with a fused
 * `decoder`, every line is decoded (an empty one fails, as it would in
 * `decode.json`), bad ones sent to its dead letters holding `ack`. The
 * region is decoded once and split, which is much cheaper than decoding line
 * by line.
 */
function splitLines(ctx: NodeContext<FileReadSettings>, buffer: Buffer, end: number, decoder: FusedDecoder | undefined, ack: Ack): (BytesItem | EventRecord)[] {
  const lines = buffer.toString('utf8', 0, end).split('\n');
  // A region ending in a newline leaves one empty string after it.
  if (buffer[end - 1] === 10) lines.pop();
  const items: (BytesItem | EventRecord)[] = new Array(lines.length);
  let count = 0;
  const json = ctx.settings.format === 'ndjson';
  for (let i = 0; i < lines.length; i++) {
    let text = lines[i];
    if (text.charCodeAt(text.length - 1) === 13) text = text.slice(0, -1); // CRLF
    if (decoder !== undefined) {
      let record: EventRecord;
      try {
        record = decoder.decode(text);
      } catch (error) {
        decoder.fail({ text }, error, ack);
        continue;
      }
      items[count++] = record;
      continue;
    }
    if (!json) {
      items[count++] = { text };
      continue;
    }
    if (text.trim() === '') continue;
    let record: EventRecord;
    try {
      record = parseJsonObject(text);
    } catch (error) {
      ctx.fail({ text }, error);
      continue;
    }
    items[count++] = record;
  }
  items.length = count;
  return items;
}

/**
 * The position of the last line acknowledged downstream. Acks may complete
 * out of order; the position only moves past a batch once every batch
 * before it is done, so a resume never skips an unacknowledged line.
 */
interface Checkpoint {
  position: number;
  track(endOffset: number): () => void;
  flush(): Promise<void>;
}

async function openCheckpoint(file: string, ctx: NodeContext<unknown>): Promise<Checkpoint> {
  const label = ctx.label;
  let position = 0;
  try {
    const saved = JSON.parse(await readFile(file, 'utf8')) as { position?: unknown };
    if (typeof saved.position === 'number' && saved.position >= 0) position = saved.position;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw pathError(label, 'cannot read checkpoint', file, error);
  }
  // Its folder is made now, so a bad place fails the node before any record is read.
  await ensureFolder(dirname(file)).catch((error: unknown) => {
    throw pathError(label, 'cannot create the folder of checkpoint', file, error);
  });
  const pending: { end: number; done: boolean }[] = [];
  let saved = position;
  let writing: Promise<void> = Promise.resolve();
  let cancelTimer: (() => void) | undefined;
  const save = (): Promise<void> => {
    cancelTimer = undefined;
    if (checkpoint.position === saved) return writing;
    const value = checkpoint.position;
    writing = writing.then(async function saveCheckpoint() {
      try {
        await writeFile(`${file}.tmp`, JSON.stringify({ position: value }));
        await rename(`${file}.tmp`, file);
      } catch (error) {
        throw pathError(label, 'cannot save checkpoint', file, error);
      }
      saved = value;
    });
    return writing;
  };
  const checkpoint: Checkpoint = {
    position,
    track(end) {
      const entry = { end, done: false };
      pending.push(entry);
      return function lineBatchAcknowledged() {
        entry.done = true;
        while (pending.length > 0 && pending[0].done) checkpoint.position = pending.shift()!.end;
        cancelTimer ??= ctx.schedule(50, function saveSoon() {
          // A failed save is retried by the next one; the final flush reports it as the node's error.
          save().catch((error: unknown) => {
            writing = Promise.resolve();
            ctx.log.warn({ error: (error as Error).message }, 'checkpoint not saved; retrying with the next acknowledgement');
          });
        });
      };
    },
    async flush() {
      cancelTimer?.();
      await save();
    },
  };
  return checkpoint;
}
