/**
 * The one error class the CLI prints as a plain message: a user mistake or
 * an unreadable file, never a stack trace. Kept in its own file so that
 * `cli/main.ts` can catch it without loading the checker.
 */

/** An error meant for the user: printed as one line, never with a stack trace. */
export class UsageError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 2) {
    super(message);
    this.name = 'UsageError';
    this.exitCode = exitCode;
  }
}
