/** URLs as logs and errors may show them: no passwords, no tokens. */

const secretParams = /^(token|access_token|key|api_key|apikey|secret|password|sig|signature)$/i;

/**
 * Replaces the password of a URL and the values of query parameters that
 * usually hold secrets (`token`, `key`, `password`, ...) with `***`.
 */
export function redactUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return redactUnparsed(text);
  }
  if (url.password) url.password = '***';
  for (const name of [...url.searchParams.keys()]) if (secretParams.test(name)) url.searchParams.set(name, '***');
  return url.toString();
}

/**
 * What `URL` cannot parse (a password holding `/`): the user information of
 * `scheme://user:password@host` runs to the last `@`, so the password is
 * hidden whole; other text hides whatever sits between `//` and `@`.
 */
function redactUnparsed(text: string): string {
  const match = /^([a-z][a-z0-9+.-]*:\/\/)(\S*)$/is.exec(text);
  if (match) {
    const [, scheme, rest] = match;
    const at = rest.lastIndexOf('@');
    const colon = rest.indexOf(':');
    if (at >= 0 && colon >= 0 && colon < at) return `${scheme}${rest.slice(0, colon)}:***${rest.slice(at)}`;
  }
  return text.replace(/\/\/[^@/]*@/, '//***@');
}
