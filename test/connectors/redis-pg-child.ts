/**
 * A process that runs one pipeline with the Redis and PostgreSQL operators
 * until it is killed: the crash tests start it, SIGKILL it mid-stream and
 * start it again. Usage: `node redis-pg-child.ts PIPELINE.yaml`.
 */
import { readFileSync } from 'node:fs';
import { checkPipeline } from '../../graph/check.ts';
import { formatDiagnostic } from '../../graph/diagnostics.ts';
import pgQuery from '../../nodes/io/pg-query.ts';
import pgWrite from '../../nodes/io/pg-write.ts';
import redisStream from '../../nodes/messaging/redis-stream.ts';
import redisSubscribe from '../../nodes/messaging/redis-subscribe.ts';
import redisWrite from '../../nodes/messaging/redis-write.ts';
import type { OperatorDefinition } from '../../runtime/api.ts';
import { Engine } from '../../runtime/engine.ts';
import { createLogger } from '../../runtime/log.ts';

const file = process.argv[2];
const all = new Map<string, OperatorDefinition>([...[redisStream, redisWrite, redisSubscribe, pgWrite, pgQuery].map((op) => [op.name, op] as const)]);
const result = checkPipeline({ file, text: readFileSync(file, 'utf8'), registry: all, env: process.env });
if (!result.graph) {
  process.stderr.write(result.diagnostics.map(formatDiagnostic).join('\n') + '\n');
  process.exit(1);
}
const engine = new Engine(result.graph, { registry: all, log: createLogger('warn') });
engine.start();
process.stdout.write('started\n');
await engine.done;
