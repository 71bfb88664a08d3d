/**
 * What the edge refuses before anything is forwarded or looked up: request
 * targets that could reach outside the path the origin meant to serve
 * (`..` in any spelling, encoded slashes and backslashes, NUL), control
 * characters that could split a header or a log line, absolute-form
 * targets (the edge is not an open proxy), and overlong URLs. Varnish 7.1
 * forwards such targets unchanged and caches the answer; here they get 400
 * and the origin never sees them.
 */

/** The longest request target accepted, in bytes. */
export const maxTargetLength = 8192;

/** Why a target is refused, or undefined when it is acceptable. */
export function targetProblem(target: string): string | undefined {
  if (target.length > maxTargetLength) return `the URL is longer than ${maxTargetLength} bytes`;
  if (!target.startsWith('/')) return 'the request target must be a path';
  // Control characters (CR and LF split headers; NUL ends strings in C origins), raw or percent-encoded.
  if (/[\u0000-\u001f\u007f]/.test(target)) return 'control characters in the URL';
  if (/%(?:[01][0-9a-f]|7f)/i.test(target)) return 'encoded control characters in the URL';
  if (target.includes('\\')) return 'backslashes in the URL';
  const query = target.indexOf('?');
  const path = query < 0 ? target : target.slice(0, query);
  if (/%(?:2f|5c)/i.test(path)) return 'encoded slashes in the path';
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    return 'malformed percent-encoding in the path';
  }
  // Dot segments in the path as sent or once decoded (`%2e%2e`); a second decoding (`%252e`) is caught too.
  for (const form of [path, decoded, safeDecode(decoded)]) {
    if (form.split('/').some((segment) => segment === '..' || segment === '.')) return 'dot segments (`..`) in the path';
  }
  return undefined;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** Accepted targets remembered; past it the memory starts again (a flood of distinct targets costs only the checks). */
const rememberedTargets = 4096;

/**
 * {@link targetProblem} with the targets it accepted remembered: players ask
 * for the same playlists and segments over and over, and a remembered
 * target costs one set lookup instead of the regular expressions and
 * decodings. Refused targets are not remembered (they are rare, and an
 * attacker's).
 */
export class CheckedTargets {
  readonly #accepted = new Set<string>();

  problem(target: string): string | undefined {
    if (this.#accepted.has(target)) return undefined;
    const problem = targetProblem(target);
    if (problem === undefined) {
      if (this.#accepted.size >= rememberedTargets) this.#accepted.clear();
      this.#accepted.add(target);
    }
    return problem;
  }
}
