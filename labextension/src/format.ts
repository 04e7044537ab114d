/**
 * Numbers as a physicist reads them: bytes, durations, hours, counts.
 * Pure functions (unit-tested in test/format.test.ts).
 */

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** 1536 -> "1.5 KiB"; null/undefined/NaN -> "—" (unknown). */
export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n) || n < 0) {
    return '—';
  }
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < BYTE_UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  if (unit === 0) {
    return `${Math.round(value)} B`;
  }
  const digits = value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return `${trim(value.toFixed(digits))} ${BYTE_UNITS[unit]}`;
}

/** Seconds -> "45 s", "12 min", "3 h 5 min", "2 d 4 h". */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) {
    return '—';
  }
  const s = Math.floor(seconds);
  if (s < 60) {
    return `${s} s`;
  }
  const min = Math.floor(s / 60);
  if (min < 60) {
    return `${min} min`;
  }
  const h = Math.floor(min / 60);
  if (h < 24) {
    const rest = min % 60;
    return rest ? `${h} h ${rest} min` : `${h} h`;
  }
  const d = Math.floor(h / 24);
  const rest = h % 24;
  return rest ? `${d} d ${rest} h` : `${d} d`;
}

/** Core-hours and the like: "0", "0.25", "12.5", "1,234". */
export function formatAmount(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) {
    return '—';
  }
  const abs = Math.abs(n);
  const digits = abs >= 100 ? 0 : abs >= 1 ? 1 : 2;
  const fixed = trim(n.toFixed(digits));
  const [whole, frac] = fixed.split('.');
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return frac ? `${grouped}.${frac}` : grouped;
}

/** A quota dimension's value in its own unit: memory in bytes, hours, counts. */
export function formatQuantity(key: string, n: number | null | undefined): string {
  if (n === null || n === undefined) {
    return 'no limit';
  }
  if (key === 'memory' || key.endsWith('_memory')) {
    return formatBytes(n);
  }
  if (key.endsWith('_hours')) {
    return `${formatAmount(n)} h`;
  }
  return formatAmount(n);
}

/** "3 of 1,000 files" style counts. */
export function plural(n: number, one: string, many?: string): string {
  return `${formatAmount(n)} ${n === 1 ? one : (many ?? one + 's')}`;
}

function trim(text: string): string {
  return text.includes('.') ? text.replace(/\.?0+$/, '') : text;
}
