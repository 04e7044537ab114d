/**
 * Code the panel inserts into notebooks. Names come from the gateway or Rucio and
 * are put into Python string literals escaped, never pasted raw.
 * Pure functions (unit-tested in test/snippets.test.ts).
 */

/** A Python string literal for any text (quotes, backslashes, newlines, controls). */
export function pythonString(text: string): string {
  let out = '"';
  for (const ch of text) {
    const code = ch.codePointAt(0) ?? 0;
    if (ch === '\\') {
      out += '\\\\';
    } else if (ch === '"') {
      out += '\\"';
    } else if (ch === '\n') {
      out += '\\n';
    } else if (ch === '\r') {
      out += '\\r';
    } else if (ch === '\t') {
      out += '\\t';
    } else if (code < 0x20 || code === 0x7f) {
      out += '\\x' + code.toString(16).padStart(2, '0');
    } else if (code === 0x2028 || code === 0x2029) {
      out += '\\u' + code.toString(16);
    } else {
      out += ch;
    }
  }
  return out + '"';
}

/** The client code for a gateway cluster: through the gateway, not a bare tcp address. */
export function daskClientCode(clusterName: string): string {
  return [
    'from dask_gateway import Gateway',
    '',
    `client = Gateway().connect(${pythonString(clusterName)}).get_client()`,
    'client'
  ].join('\n');
}
