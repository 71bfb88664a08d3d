/**
 * The one error the pure media formats raise: bytes that do not parse as
 * the format says. Readers that take untrusted input (a socket, a file)
 * return it instead of throwing, so a caller never crashes on garbage.
 */
export class MediaFormatError extends Error {
  readonly code = 'media_format';
  constructor(message: string) {
    super(message);
    this.name = 'MediaFormatError';
  }
}
