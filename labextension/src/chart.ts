/**
 * The Usage tab's small chart: one horizontal bar per quota, as geometry only (the
 * tab draws it as SVG). Pure functions (unit-tested in test/chart.test.ts).
 */

import { formatQuantity } from './format';

/** af-accounting's policy/me "remaining" entry. */
export interface Remaining {
  limit: number | null;
  in_use: number;
  left: number | null;
  capped_by?: string;
}

export interface Bar {
  key: string;
  label: string;
  fraction: number; // 0..1 of the bar filled
  text: string; // "1.5 of 2"
  level: 'ok' | 'warn' | 'full' | 'unlimited';
}

export const LABELS: Record<string, string> = {
  servers: 'Notebook servers',
  cores: 'Cores',
  memory: 'Memory',
  dask_clusters: 'Dask clusters',
  dask_workers: 'Dask workers',
  dask_cores: 'Dask cores',
  dask_memory: 'Dask memory',
  core_hours: 'Core-hours this period',
  gpu_hours: 'GPU-hours this period'
};

export function labelFor(key: string): string {
  if (LABELS[key]) {
    return LABELS[key];
  }
  if (key.startsWith('gpus')) {
    return `GPUs ${key.slice(4).replace(/^[:.]/, '')}`.trim();
  }
  return key.replace(/_/g, ' ');
}

/** Bars in a stable order; a limit of 0 that is not used is left out (not offered). */
export function quotaBars(remaining: Record<string, Remaining>, warnAt = 0.8): Bar[] {
  const order = Object.keys(LABELS);
  const keys = Object.keys(remaining).sort(
    (a, b) => rank(order, a) - rank(order, b) || (a < b ? -1 : 1)
  );
  const bars: Bar[] = [];
  for (const key of keys) {
    const r = remaining[key];
    const used = Number(r.in_use) || 0;
    if (r.limit === null || r.limit === undefined) {
      bars.push({
        key,
        label: labelFor(key),
        fraction: 0,
        text: `${formatQuantity(key, used)} (no limit)`,
        level: 'unlimited'
      });
      continue;
    }
    if (r.limit === 0 && used === 0) {
      continue;
    }
    const fraction = r.limit > 0 ? Math.min(1, Math.max(0, used / r.limit)) : 1;
    bars.push({
      key,
      label: labelFor(key),
      fraction,
      text: `${formatQuantity(key, used)} of ${formatQuantity(key, r.limit)}`,
      level: fraction >= 1 ? 'full' : fraction >= warnAt ? 'warn' : 'ok'
    });
  }
  return bars;
}

function rank(order: string[], key: string): number {
  const i = order.indexOf(key);
  return i < 0 ? order.length : i;
}

/** Build "remaining" from limits and usage when af-accounting has no "remaining" yet. */
export function remainingFrom(
  limits: Record<string, { value: number | null }>,
  usage: Record<string, number>
): Record<string, Remaining> {
  const out: Record<string, Remaining> = {};
  for (const [key, lim] of Object.entries(limits)) {
    const used = Number(usage[key] ?? 0) || 0;
    const limit = lim?.value ?? null;
    out[key] = { limit, in_use: used, left: limit === null ? null : Math.max(0, limit - used) };
  }
  return out;
}
