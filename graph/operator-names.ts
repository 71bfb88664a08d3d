/**
 * The operator names a pipeline's text gives, read without parsing it: what
 * the CLI loads (`loadOperators`) before the checker runs. Every value of an
 * `op:` key, block or flow style, quotes taken off. A value that is not a
 * plain name (a `${...}` reference, an alias, a block scalar, nothing on the
 * line) is returned as it is written, an unknown name, and an `op:` that is
 * not a node's (inside a setting) gives a name too: either way the caller
 * loads more operators than needed, never fewer.
 */

// `op:` as a key: at a line's start (after indentation or a sequence dash) or after `{` or `,` in a flow map; the key may be quoted.
const opKey = /(?:^|[\s{,-])(?:op|"op"|'op')[ \t]*:(?:[ \t]+|(?=[\r\n,}])|$)("[^"\n]*"|'[^'\n]*'|[^\s,}#]*)/gm;

/**
 * @example operatorsNamedIn('nodes:\n  a: { op: generate }\n  b:\n    op: "stdout"\n') // ['generate', 'stdout']
 */
export function operatorsNamedIn(text: string): string[] {
  const names = new Set<string>();
  for (const match of text.matchAll(opKey)) {
    const value = match[1];
    names.add(/^["']/.test(value) ? value.slice(1, -1) : value);
  }
  return [...names];
}
