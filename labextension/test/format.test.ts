import { test } from 'node:test';
import assert from 'node:assert/strict';

import { formatAmount, formatBytes, formatDuration, formatQuantity, plural } from '../src/format';

const bytes: [number | null | undefined, string][] = [
  [0, '0 B'],
  [1023, '1023 B'],
  [1024, '1 KiB'],
  [1536, '1.5 KiB'],
  [10 * 1024 * 1024 + 1, '10 MiB'],
  [2 * 1024 ** 3, '2 GiB'],
  [123.4 * 1024 ** 4, '123 TiB'],
  [5 * 1024 ** 6, '5120 PiB'],
  [null, '—'],
  [undefined, '—'],
  [NaN, '—'],
  [-1, '—']
];
for (const [n, want] of bytes) {
  test(`formatBytes(${n}) = ${want}`, () => assert.equal(formatBytes(n), want));
}

const durations: [number | null, string][] = [
  [0, '0 s'],
  [59.9, '59 s'],
  [60, '1 min'],
  [3599, '59 min'],
  [3600, '1 h'],
  [3600 + 5 * 60, '1 h 5 min'],
  [86400, '1 d'],
  [86400 * 2 + 3600 * 4, '2 d 4 h'],
  [-5, '—'],
  [null, '—']
];
for (const [s, want] of durations) {
  test(`formatDuration(${s}) = ${want}`, () => assert.equal(formatDuration(s), want));
}

const amounts: [number | null, string][] = [
  [0, '0'],
  [0.25, '0.25'],
  [0.125, '0.13'],
  [12.5, '12.5'],
  [99.96, '100'],
  [1234, '1,234'],
  [1234567.8, '1,234,568'],
  [-3.5, '-3.5'],
  [null, '—']
];
for (const [n, want] of amounts) {
  test(`formatAmount(${n}) = ${want}`, () => assert.equal(formatAmount(n), want));
}

test('formatQuantity picks the unit by the quota key', () => {
  assert.equal(formatQuantity('memory', 8 * 1024 ** 3), '8 GiB');
  assert.equal(formatQuantity('dask_memory', 16 * 1024 ** 3), '16 GiB');
  assert.equal(formatQuantity('core_hours', 496.5), '497 h');
  assert.equal(formatQuantity('gpu_hours', 2.5), '2.5 h');
  assert.equal(formatQuantity('dask_workers', 4), '4');
  assert.equal(formatQuantity('cores', null), 'no limit');
});

test('plural', () => {
  assert.equal(plural(1, 'file'), '1 file');
  assert.equal(plural(100000, 'file'), '100,000 files');
  assert.equal(plural(2, 'replica', 'replicas'), '2 replicas');
});
