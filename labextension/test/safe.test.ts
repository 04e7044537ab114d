import { test } from 'node:test';
import assert from 'node:assert/strict';

import { checkTarget, didString, safeHttpUrl, splitDid } from '../src/safe';

const urls: [unknown, string | null][] = [
  [
    'http://127.0.0.1:8000/services/dask-gateway/clusters/abc/status',
    'http://127.0.0.1:8000/services/dask-gateway/clusters/abc/status'
  ],
  ['https://hub.example/x', 'https://hub.example/x'],
  [
    '/services/dask-gateway/clusters/abc/status',
    'http://localhost/services/dask-gateway/clusters/abc/status'
  ],
  ['javascript:alert(1)', null],
  [' JavaScript:alert(1)', null],
  ['data:text/html,<script>alert(1)</script>', null],
  ['file:///etc/passwd', null],
  ['', null],
  [null, null],
  [42, null]
];
for (const [url, want] of urls) {
  test(`safeHttpUrl(${JSON.stringify(url)})`, () => assert.equal(safeHttpUrl(url), want));
}

test('DIDs as Rucio writes them, and scope:pattern typed in one box', () => {
  assert.equal(didString('user.alice', 'f.root'), 'user.alice:f.root');
  assert.deepEqual(splitDid('data18:AOD.*', 'ignored'), { scope: 'data18', pattern: 'AOD.*' });
  assert.deepEqual(splitDid('AOD.*', ' user.alice '), { scope: 'user.alice', pattern: 'AOD.*' });
  assert.deepEqual(splitDid('', 'mc16'), { scope: 'mc16', pattern: '*' });
  assert.deepEqual(splitDid('mc16:', ''), { scope: 'mc16', pattern: '*' });
});

const targets: [string, string | null][] = [
  ['rucio/file.root', null],
  ['file.root', null],
  ['a/b/../../../etc/passwd', 'The target must stay inside your home: ".." is not allowed.'],
  ['..\\x', 'The target must stay inside your home: ".." is not allowed.'],
  ['/etc/passwd', 'The target must be a path inside your home, not an absolute path.'],
  ['~/x', 'The target must be a path inside your home, not an absolute path.'],
  ['C:\\x', 'The target must be a path inside your home, not an absolute path.'],
  ['  ', 'Give a folder or file name inside your home, like data/file.root.']
];
for (const [t, want] of targets) {
  test(`checkTarget(${JSON.stringify(t)})`, () => assert.equal(checkTarget(t), want));
}
