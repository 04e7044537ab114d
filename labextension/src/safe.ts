/**
 * Where untrusted strings meet the page. Names of clusters, DIDs and PFNs are only
 * ever set as text (element.textContent; see dom.ts); links are checked here.
 * Pure functions (unit-tested in test/safe.test.ts).
 */

/** The URL if it is http(s) (absolute, or relative to `base`), else null:
 *  never javascript:, data: or anything else as a link. */
export function safeHttpUrl(url: unknown, base = 'http://localhost/'): string | null {
  if (typeof url !== 'string' || !url.trim()) {
    return null;
  }
  try {
    const u = new URL(url.trim(), base);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
  } catch {
    return null;
  }
}

/** "scope:name" as Rucio writes a DID. */
export function didString(scope: string, name: string): string {
  return `${scope}:${name}`;
}

/** Split "scope:pattern" typed in one box; a bare pattern keeps the scope given. */
export function splitDid(text: string, scope: string): { scope: string; pattern: string } {
  const t = text.trim();
  const i = t.indexOf(':');
  if (i > 0) {
    return { scope: t.slice(0, i).trim(), pattern: t.slice(i + 1).trim() || '*' };
  }
  return { scope: scope.trim(), pattern: t || '*' };
}

/** A download target inside the home: relative, no "..", no empty parts. */
export function checkTarget(path: string): string | null {
  const p = path.trim();
  if (!p) {
    return 'Give a folder or file name inside your home, like data/file.root.';
  }
  if (p.startsWith('/') || p.startsWith('~') || /^[a-zA-Z]:[\\/]/.test(p)) {
    return 'The target must be a path inside your home, not an absolute path.';
  }
  if (p.split(/[\\/]/).some(part => part === '..')) {
    return 'The target must stay inside your home: ".." is not allowed.';
  }
  return null;
}
