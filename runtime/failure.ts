/**
 * Failure semantics: whether an error is transient (the node restarts with
 * backoff), permanent (the node fails; retrying cannot help), or a record
 * error (one record is at fault: it is dead-lettered and the node goes on).
 */
import { NativeError } from '../native/client-owner.ts';

/** What kind of failure an error is; see `failureKind`. */
export type FailureKind = 'transient' | 'permanent' | 'record';

/**
 * File-system errors that retrying cannot cure: the configured path is
 * missing, of the wrong kind, or forbidden. A user must change something.
 */
const permanentPathCodes = new Set(['ENOENT', 'EISDIR', 'ENOTDIR', 'EACCES', 'EPERM', 'EROFS', 'ENAMETOOLONG', 'ELOOP']);

/**
 * Wraps an error with the node that raised it and a stable code. `kind`
 * says how the runtime treats it; when absent it is read from the cause
 * (see `failureKind`). It is a `NativeError` (the code-carrying error of
 * `native/`) with a failure kind, so code that reads `code` takes either.
 */
export class NodeError extends NativeError {
  readonly kind: FailureKind | undefined;
  constructor(code: string, message: string, options?: { cause?: unknown; kind?: FailureKind }) {
    super(code, message, options);
    this.name = 'NodeError';
    this.kind = options?.kind;
  }

  /** True for an error that restarting the node cannot cure. */
  get permanent(): boolean {
    return failureKind(this) === 'permanent';
  }
}

/** A short reason for a failure, for dead letters and logs. */
export function reasonOf(error: unknown): string {
  if (error instanceof Error) return error.message.split('\n')[0];
  return String(error);
}

/**
 * Classifies an error. A `NodeError` with a kind says what it is; an error
 * of `native/` says what can cure it (a TLS file that cannot be read, a
 * privileged or unknown listening address: permanent; a port in use, a
 * refused connection: transient); otherwise a file-system error on a path
 * (it carries `path` and an errno code such as ENOENT or EROFS) is
 * permanent, a `RangeError`/`TypeError`/`SyntaxError` (a value that cannot
 * be serialised or handled) is a record error, and anything else (a refused
 * connection, a timeout) is transient. Causes are followed, so a wrapped
 * `ENOENT` stays permanent.
 */
export function failureKind(error: unknown): FailureKind {
  for (let current = error, depth = 0; current instanceof Error && depth < 8; current = current.cause, depth++) {
    if (current instanceof NodeError) {
      if (current.kind) return current.kind;
    } else if (current instanceof NativeError) {
      return current.cure === 'settings' ? 'permanent' : 'transient';
    }
    const errno = current as NodeJS.ErrnoException;
    if (typeof errno.code === 'string' && typeof errno.path === 'string' && permanentPathCodes.has(errno.code)) return 'permanent';
    if (current instanceof RangeError || current instanceof TypeError || current instanceof SyntaxError) return 'record';
  }
  return 'transient';
}

/** What an errno code means, in a few lowercase words. */
function errnoText(code: string | undefined, fallback: string): string {
  switch (code) {
    case 'ENOENT':
      return 'no such file or folder';
    case 'EISDIR':
      return 'is a folder';
    case 'ENOTDIR':
      return 'a part of the path is not a folder';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EROFS':
      return 'read-only file system';
    default:
      return fallback;
  }
}

/**
 * A located, classified error for a file operation on a configured path:
 * `node \`src\` (a.yaml:4): cannot open input \`/tmp/nope.ndjson\`: no such file or folder`.
 */
export function pathError(label: string, action: string, path: string, error: unknown): NodeError {
  const errno = error as NodeJS.ErrnoException;
  const why = errnoText(errno?.code, reasonOf(error));
  return new NodeError(errno?.code === undefined ? 'file_failed' : `file_${errno.code.toLowerCase()}`, `${label}: ${action} \`${path}\`: ${why}`, { cause: error });
}
