/**
 * Runs a pipeline file on the engine with the MQTT operators registered, as
 * `streams run FILE` does with the shipped registry: for tests that kill the
 * engine's process. Logs go to stderr as JSON lines; SIGTERM drains.
 *
 *   node test/connectors/mqtt-launcher.ts pipeline.yaml
 */
import { readFileSync } from 'node:fs';
import { checkPipeline } from '../../graph/check.ts';
import { formatDiagnostic } from '../../graph/diagnostics.ts';
import { Engine } from '../../runtime/engine.ts';
import { createLogger } from '../../runtime/log.ts';
import { mqttRegistry } from './mqtt-harness.ts';

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: mqtt-launcher.ts PIPELINE\n');
  process.exit(2);
}
const result = checkPipeline({ file, text: readFileSync(file, 'utf8'), registry: mqttRegistry, env: process.env });
const errors = result.diagnostics.filter((d) => d.severity === 'error');
if (errors.length > 0 || !result.graph) {
  process.stderr.write(`${errors.map(formatDiagnostic).join('\n')}\n`);
  process.exit(1);
}
const engine = new Engine(result.graph, { registry: mqttRegistry, log: createLogger('info') });
process.on('SIGTERM', () => void engine.drain({ deadlineMs: 5_000 }));
engine.start();
await engine.done;
