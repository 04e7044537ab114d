/**
 * The panel never turns a string into markup: no innerHTML, outerHTML,
 * insertAdjacentHTML, document.write or DOMParser anywhere in its sources (names of
 * clusters, DIDs and PFNs are set with textContent, see src/dom.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

// compiled to test-build/test/: the sources are two folders up
const SRC = join(__dirname, '..', '..', 'src');
const FORBIDDEN =
  /\b(innerHTML|outerHTML|insertAdjacentHTML|document\.write|DOMParser|dangerouslySetInnerHTML)\b/;

test('no source file builds markup from strings', () => {
  const files = readdirSync(SRC).filter(f => f.endsWith('.ts'));
  assert.ok(files.length >= 10, `sources found in ${SRC}`);
  for (const f of files) {
    const text = readFileSync(join(SRC, f), 'utf8');
    const lines = text.split('\n').filter(l => FORBIDDEN.test(l) && !l.trim().startsWith('*'));
    assert.deepEqual(lines, [], `${f} must not use HTML parsing`);
  }
});

test('the only SVG markup string is the constant panel icon', () => {
  const panel = readFileSync(join(SRC, 'panel.ts'), 'utf8');
  assert.ok(panel.includes('svgstr:'));
  for (const f of readdirSync(SRC).filter(f => f.endsWith('.ts') && f !== 'panel.ts')) {
    assert.ok(!readFileSync(join(SRC, f), 'utf8').includes('svgstr'), f);
  }
});
