import { test } from 'node:test';
import assert from 'node:assert/strict';

import { labelFor, quotaBars, remainingFrom } from '../src/chart';

// af-accounting's policy/me "remaining" for alice in the demo
const REMAINING = {
  core_hours: { limit: 500, in_use: 3.5, left: 496.5 },
  servers: { limit: 1, in_use: 1, left: 0 },
  cores: { limit: 2, in_use: 1.7, left: 0.3 },
  memory: { limit: 8 * 1024 ** 3, in_use: 0, left: 8 * 1024 ** 3 },
  gpu_hours: { limit: 0, in_use: 0, left: 0 },
  dask_workers: { limit: null, in_use: 3, left: null },
  'gpus:t4': { limit: 1, in_use: 0, left: 1 }
};

test('one bar per quota, in a stable order, levels by the warning threshold', () => {
  const bars = quotaBars(REMAINING, 0.8);
  assert.deepEqual(
    bars.map(b => [b.key, b.level, Math.round(b.fraction * 100)]),
    [
      ['servers', 'full', 100],
      ['cores', 'warn', 85],
      ['memory', 'ok', 0],
      ['dask_workers', 'unlimited', 0],
      ['core_hours', 'ok', 1],
      ['gpus:t4', 'ok', 0]
    ]
  );
  const text = Object.fromEntries(bars.map(b => [b.key, b.text]));
  assert.equal(text.memory, '0 B of 8 GiB');
  assert.equal(text.core_hours, '3.5 h of 500 h');
  assert.equal(text.dask_workers, '3 (no limit)');
  assert.equal(labelFor('gpus:t4'), 'GPUs t4');
});

test('over the limit stays a full bar; a zero limit in use is shown full', () => {
  const [b] = quotaBars({ cores: { limit: 2, in_use: 5, left: 0 } });
  assert.equal(b.fraction, 1);
  const [z] = quotaBars({ gpu_hours: { limit: 0, in_use: 1, left: 0 } });
  assert.equal(z.level, 'full');
});

test('remainingFrom builds the same shape from limits and usage', () => {
  assert.deepEqual(
    remainingFrom({ core_hours: { value: 100 }, cores: { value: null } }, { core_hours: 40 }),
    {
      core_hours: { limit: 100, in_use: 40, left: 60 },
      cores: { limit: null, in_use: 0, left: null }
    }
  );
});
