/**
 * Structured logs: JSON, one event a line, to stderr (pino), so stdout stays
 * free for data (the `stdout` sink).
 */
import pino from 'pino';
import type { Logger } from './types.ts';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

export function createLogger(level: LogLevel = 'info'): Logger & { child(bindings: object): Logger; flush(): void } {
  return pino({ level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ dest: 2, sync: true }));
}

/** A logger that keeps nothing, for tests and embedding. */
export const silentLogger: Logger & { child(bindings: object): Logger } = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};
