/**
 * Paging state of the Data tab's lists: the server sends one page at a time
 * (page, page_size, has_more), so a dataset of 100,000 files never reaches the
 * browser whole. The panel counts pages from 1; the server's ``page`` parameter
 * counts from 0 (jhub_af.lab.rucio). Pure functions (unit-tested in test/paging.test.ts).
 */

export interface Page {
  page: number; // 1-based
  pageSize: number;
  hasMore: boolean;
  count: number; // items on this page
}

export const PAGE_SIZES = [25, 50, 100, 200];
export const DEFAULT_PAGE_SIZE = 50;

export function firstPage(pageSize = DEFAULT_PAGE_SIZE): Page {
  return { page: 1, pageSize: clampPageSize(pageSize), hasMore: false, count: 0 };
}

export function clampPageSize(n: number): number {
  if (!Number.isFinite(n) || n < 1) {
    return DEFAULT_PAGE_SIZE;
  }
  return Math.min(Math.floor(n), PAGE_SIZES[PAGE_SIZES.length - 1]);
}

/** The state after the server answered a page (its ``page`` counts from 0). */
export function answered(
  state: Page,
  body: { page?: number; page_size?: number; has_more?: boolean; items?: unknown[] }
): Page {
  return {
    page:
      typeof body.page === 'number' && Number.isInteger(body.page) && body.page >= 0
        ? body.page + 1
        : state.page,
    pageSize: typeof body.page_size === 'number' ? body.page_size : state.pageSize,
    hasMore: Boolean(body.has_more),
    count: Array.isArray(body.items) ? body.items.length : 0
  };
}

export function canPrev(state: Page): boolean {
  return state.page > 1;
}

export function canNext(state: Page): boolean {
  return state.hasMore;
}

export function nextPage(state: Page): Page {
  return canNext(state) ? { ...state, page: state.page + 1, hasMore: false, count: 0 } : state;
}

export function prevPage(state: Page): Page {
  return canPrev(state) ? { ...state, page: state.page - 1, hasMore: false, count: 0 } : state;
}

/** "Items 51–100", "Items 101–137 (last page)", "No items". */
export function pageLabel(state: Page, noun = 'items'): string {
  if (state.count === 0) {
    return state.page > 1 ? `No more ${noun}` : `No ${noun}`;
  }
  const first = (state.page - 1) * state.pageSize + 1;
  const last = first + state.count - 1;
  const cap = noun.charAt(0).toUpperCase() + noun.slice(1);
  return `${cap} ${first}–${last}${state.hasMore ? '' : ' (last page)'}`;
}

/** The query string of a page request, with the other parameters given. */
export function pageQuery(state: Page, params: Record<string, string>): string {
  const q = new URLSearchParams(params);
  q.set('page', String(state.page - 1));
  q.set('page_size', String(state.pageSize));
  return q.toString();
}
