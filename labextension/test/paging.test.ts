import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  answered,
  canNext,
  canPrev,
  clampPageSize,
  firstPage,
  nextPage,
  pageLabel,
  pageQuery,
  prevPage
} from '../src/paging';

test('a 100,000-file dataset is walked a page at a time', () => {
  let p = firstPage(100);
  assert.equal(
    pageQuery(p, { scope: 'data18', name: 'big' }),
    'scope=data18&name=big&page=0&page_size=100'
  );
  p = answered(p, { page: 0, page_size: 100, has_more: true, items: new Array(100) });
  assert.equal(pageLabel(p, 'files'), 'Files 1–100');
  assert.ok(canNext(p));
  assert.ok(!canPrev(p));
  p = nextPage(p);
  assert.equal(p.page, 2);
  assert.ok(!canNext(p), 'no next page before the server answered');
  for (let i = 0; i < 998; i++) {
    p = nextPage(
      answered(p, { page: p.page - 1, page_size: 100, has_more: true, items: new Array(100) })
    );
  }
  assert.equal(p.page, 1000);
  assert.equal(pageQuery(p, {}), 'page=999&page_size=100');
  p = answered(p, { page: 999, page_size: 100, has_more: false, items: new Array(100) });
  assert.equal(pageLabel(p, 'files'), 'Files 99901–100000 (last page)');
  assert.equal(nextPage(p), p, 'no page after the last');
  p = prevPage(p);
  assert.equal(p.page, 999);
});

test('page labels', () => {
  assert.equal(pageLabel(answered(firstPage(50), { items: [] })), 'No items');
  assert.equal(pageLabel({ page: 3, pageSize: 50, hasMore: false, count: 0 }), 'No more items');
  assert.equal(
    pageLabel({ page: 2, pageSize: 50, hasMore: false, count: 7 }, 'datasets'),
    'Datasets 51–57 (last page)'
  );
});

test('answered ignores a nonsense page from the server and keeps the asked one', () => {
  for (const page of [-1, 1.5, undefined]) {
    const p = answered({ page: 4, pageSize: 25, hasMore: false, count: 0 }, { page, items: [1] });
    assert.deepEqual(p, { page: 4, pageSize: 25, hasMore: false, count: 1 });
  }
  assert.equal(answered(firstPage(), { page: 2, items: [] }).page, 3);
});

test('page sizes are clamped', () => {
  assert.equal(clampPageSize(10_000), 200);
  assert.equal(clampPageSize(0), 50);
  assert.equal(clampPageSize(NaN), 50);
  assert.equal(clampPageSize(33.7), 33);
  assert.equal(prevPage(firstPage()).page, 1);
});

test('query parameters are encoded (wildcards and odd names)', () => {
  const q = pageQuery(firstPage(), { scope: 'user.alice', pattern: 'a*&b=c', type: 'all' });
  assert.equal(q, 'scope=user.alice&pattern=a*%26b%3Dc&type=all&page=0&page_size=50');
});
