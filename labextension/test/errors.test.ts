import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  errorMessage,
  isCredentialProblem,
  SERVER_UNREACHABLE,
  SESSION_EXPIRED,
  serverSentence
} from '../src/errors';

const GATEWAY_DOWN = 'The Dask Gateway cannot be reached right now, so nothing was changed.';

test("the server's sentence wins over any status text", () => {
  assert.equal(
    errorMessage('dask', 503, { error: 'service_unavailable', message: GATEWAY_DOWN }),
    GATEWAY_DOWN
  );
  assert.equal(
    errorMessage('rucio', 401, {
      error: 'unauthorized',
      message: 'Your Rucio token expired: stop and start your server.'
    }),
    'Your Rucio token expired: stop and start your server.'
  );
  assert.equal(
    errorMessage('dask', 400, { message: 'jupyter-server said' }),
    'jupyter-server said'
  );
});

test('the error code is never shown as the sentence', () => {
  assert.equal(
    errorMessage('usage', 503, { error: 'service_unavailable' }),
    'af-accounting (the usage service) cannot be reached right now. Try again in a minute; if it lasts, tell the facility’s admins.'
  );
});

const fallbacks: [string, number, unknown, string][] = [
  ['no answer', 0, null, SERVER_UNREACHABLE],
  ['expired session', 401, null, SESSION_EXPIRED],
  [
    'gateway down',
    503,
    'Bad Gateway',
    'The Dask Gateway cannot be reached right now. Try again in a minute; if it lasts, tell the facility’s admins.'
  ],
  [
    'rucio down',
    502,
    {},
    'Rucio cannot be reached right now. Try again in a minute; if it lasts, tell the facility’s admins.'
  ],
  [
    'usage down',
    504,
    { error: 'gateway_timeout', message: '  ' },
    'af-accounting (the usage service) cannot be reached right now. Try again in a minute; if it lasts, tell the facility’s admins.'
  ],
  [
    'not installed',
    404,
    null,
    'The panel’s server part is not installed in this notebook server; tell the facility’s admins.'
  ],
  [
    'other',
    500,
    null,
    'The Dask Gateway request failed (HTTP 500). Try again; if it lasts, tell the facility’s admins.'
  ]
];
for (const [name, status, body, want] of fallbacks) {
  test(`errorMessage: ${name}`, () =>
    assert.equal(
      errorMessage(
        name.startsWith('rucio') ? 'rucio' : name.startsWith('usage') ? 'usage' : 'dask',
        status,
        body
      ),
      want
    ));
}

test('serverSentence takes only strings, trimmed and bounded', () => {
  assert.equal(serverSentence({ error: 'bad_request', message: 42 }), '');
  assert.equal(serverSentence(null), '');
  assert.equal(serverSentence('text'), '');
  assert.equal(serverSentence({ message: 'x'.repeat(5000) }).length, 1000);
});

test('401 is the credentials case', () => {
  assert.ok(isCredentialProblem(401));
  assert.ok(!isCredentialProblem(403));
});
