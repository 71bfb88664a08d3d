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
    // Not a URL: show no more than its scheme, since it may hold anything.
    return text.replace(/\/\/[^@/]*@/, '//***@');
  }
  if (url.password) url.password = '***';
  for (const name of [...url.searchParams.keys()]) if (secretParams.test(name)) url.searchParams.set(name, '***');
  return url.toString();
}
