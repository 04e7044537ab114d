import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  checkField,
  checkWorkers,
  collectOptions,
  formFields,
  GatewayOption
} from '../src/options';

// what jhub_af's gateway offers a member of /atlas/users (jhub_af.gateway.options)
const GATEWAY: GatewayOption[] = [
  {
    field: 'worker_cores',
    label: 'Worker cores',
    default: 1,
    spec: { type: 'float', min: 1, max: 2 }
  },
  { field: 'worker_memory', label: 'GiB', default: 1, spec: { type: 'float', min: 1, max: 2.5 } },
  {
    field: 'environment',
    label: 'Environment',
    default: 'atlas',
    spec: { type: 'select', options: ['atlas', 'default'] }
  },
  { field: 'threads', label: 'Threads', default: 2, spec: { type: 'int', min: 1 } },
  { field: 'gpu', label: 'GPU', default: false, spec: { type: 'bool' } },
  { field: 'image', label: 'Image', default: 'x', spec: { type: 'string' } },
  { field: 'env', label: 'Env', default: {}, spec: { type: 'mapping' } }
];

test('formFields keeps the gateway order, its bounds and defaults; mappings are left out', () => {
  const fields = formFields(GATEWAY);
  assert.deepEqual(
    fields.map(f => [f.name, f.kind]),
    [
      ['worker_cores', 'number'],
      ['worker_memory', 'number'],
      ['environment', 'select'],
      ['threads', 'integer'],
      ['gpu', 'checkbox'],
      ['image', 'text']
    ]
  );
  const cores = fields[0];
  assert.equal(cores.min, 1);
  assert.equal(cores.max, 2);
  assert.equal(cores.step, 1);
  assert.equal(cores.initial, '1');
  assert.equal(cores.hint, '1 – 2');
  assert.equal(fields[1].step, 0.1); // a fractional bound allows tenths
  assert.deepEqual(fields[2].choices, ['atlas', 'default']);
  assert.equal(fields[2].initial, 'atlas');
  assert.equal(fields[3].hint, 'at least 1');
  assert.equal(fields[3].max, undefined);
  assert.equal(fields[4].initial, false);
});

const [CORES, , ENV, THREADS] = formFields(GATEWAY);
const cases: [string, typeof CORES, string, unknown][] = [
  ['in bounds', CORES, '2', { ok: true, value: 2 }],
  ['fraction', CORES, '1.5', { ok: true, value: 1.5 }],
  [
    'above the max',
    CORES,
    '3',
    {
      ok: false,
      error: 'Worker cores can be at most 2 for you (the facility’s limit).'.replace('’', "'")
    }
  ],
  ['below the min', CORES, '0.5', { ok: false, error: 'Worker cores must be at least 1.' }],
  ['not a number', CORES, '2; rm -rf /', { ok: false, error: 'Worker cores must be a number.' }],
  ['empty', CORES, '  ', { ok: false, error: 'Worker cores must be a number.' }],
  ['infinity', CORES, '1e999', { ok: false, error: 'Worker cores must be a number.' }],
  ['hex', CORES, '0x2', { ok: false, error: 'Worker cores must be a number.' }],
  [
    'integer field, fraction',
    THREADS,
    '1.5',
    { ok: false, error: 'Threads must be a whole number.' }
  ],
  ['integer field', THREADS, ' 4 ', { ok: true, value: 4 }],
  ['select, offered', ENV, 'default', { ok: true, value: 'default' }],
  [
    'select, not offered',
    ENV,
    'cms',
    { ok: false, error: 'Environment: choose one of atlas, default.' }
  ]
];
for (const [name, field, raw, want] of cases) {
  test(`checkField: ${name}`, () => assert.deepEqual(checkField(field, raw), want));
}

test('collectOptions gives the options to send, or an error per field', () => {
  const fields = formFields(GATEWAY);
  const good = collectOptions(fields, {
    worker_cores: '2',
    worker_memory: '2.5',
    environment: 'atlas',
    threads: '1',
    gpu: true,
    image: ' img '
  });
  assert.deepEqual(good.errors, {});
  assert.deepEqual(good.options, {
    worker_cores: 2,
    worker_memory: 2.5,
    environment: 'atlas',
    threads: 1,
    gpu: true,
    image: 'img'
  });
  const bad = collectOptions(fields, { worker_cores: '9', environment: 'nope' });
  assert.deepEqual(Object.keys(bad.errors).sort(), ['environment', 'worker_cores']);
  assert.equal(bad.options.worker_memory, 1); // the default where nothing was typed
});

const workers: [string, unknown][] = [
  ['0', { ok: true, value: 0 }],
  ['12', { ok: true, value: 12 }],
  ['-1', { ok: false, error: 'Workers must be a whole number of workers (0 or more).' }],
  ['1.5', { ok: false, error: 'Workers must be a whole number of workers (0 or more).' }],
  ['', { ok: false, error: 'Workers must be a whole number of workers (0 or more).' }],
  ['999999', { ok: false, error: 'Workers must be a whole number of workers (0 or more).' }]
];
for (const [raw, want] of workers) {
  test(`checkWorkers(${JSON.stringify(raw)})`, () =>
    assert.deepEqual(checkWorkers(raw, 'Workers'), want));
}
