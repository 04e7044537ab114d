/**
 * The gateway's cluster options -> the "New cluster" form, and a form's values ->
 * the options to send, checked against the same bounds the gateway enforces.
 * Pure functions (unit-tested in test/options.test.ts).
 */

/** One option as the gateway describes it (GET jhub-af/dask/options). */
export interface GatewayOption {
  field: string;
  label: string;
  default: unknown;
  spec: {
    type: string;
    min?: number;
    max?: number;
    options?: string[];
  };
}

export type FieldKind = 'number' | 'integer' | 'select' | 'checkbox' | 'text';

/** One input of the form. */
export interface FormField {
  name: string;
  label: string;
  kind: FieldKind;
  initial: string | boolean;
  min?: number;
  max?: number;
  step?: number;
  choices?: string[];
  /** e.g. "1 – 2" shown next to a number input */
  hint?: string;
}

/** The form's inputs, in the gateway's order; unknown types (mappings) are left out. */
export function formFields(options: GatewayOption[]): FormField[] {
  const out: FormField[] = [];
  for (const o of options) {
    const label = o.label || o.field;
    const t = o.spec?.type;
    if (t === 'float' || t === 'int') {
      const f: FormField = {
        name: o.field,
        label,
        kind: t === 'int' ? 'integer' : 'number',
        initial: String(o.default ?? o.spec.min ?? 0),
        step: t === 'int' ? 1 : stepFor(o.spec.min, o.spec.max)
      };
      if (typeof o.spec.min === 'number') {
        f.min = o.spec.min;
      }
      if (typeof o.spec.max === 'number') {
        f.max = o.spec.max;
      }
      f.hint = boundsHint(f.min, f.max);
      out.push(f);
    } else if (t === 'select') {
      const choices = (o.spec.options ?? []).map(String);
      out.push({
        name: o.field,
        label,
        kind: 'select',
        initial: String(o.default ?? choices[0] ?? ''),
        choices
      });
    } else if (t === 'bool') {
      out.push({ name: o.field, label, kind: 'checkbox', initial: Boolean(o.default) });
    } else if (t === 'string') {
      out.push({ name: o.field, label, kind: 'text', initial: String(o.default ?? '') });
    }
  }
  return out;
}

function stepFor(min?: number, max?: number): number {
  const whole = [min, max].every(v => v === undefined || Number.isInteger(v));
  return whole ? 1 : 0.1;
}

export function boundsHint(min?: number, max?: number): string {
  if (min !== undefined && max !== undefined) {
    return `${min} – ${max}`;
  }
  if (min !== undefined) {
    return `at least ${min}`;
  }
  if (max !== undefined) {
    return `at most ${max}`;
  }
  return '';
}

export type Checked = { ok: true; value: unknown } | { ok: false; error: string };

/** One input's raw value -> the value to send, or the sentence to show beside it. */
export function checkField(field: FormField, raw: string | boolean): Checked {
  if (field.kind === 'checkbox') {
    return { ok: true, value: Boolean(raw) };
  }
  const text = String(raw).trim();
  if (field.kind === 'select') {
    if (!field.choices?.includes(text)) {
      return { ok: false, error: `${field.label}: choose one of ${field.choices?.join(', ')}.` };
    }
    return { ok: true, value: text };
  }
  if (field.kind === 'text') {
    return { ok: true, value: text };
  }
  if (text === '' || !/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(text)) {
    return { ok: false, error: `${field.label} must be a number.` };
  }
  const n = Number(text);
  if (!Number.isFinite(n)) {
    return { ok: false, error: `${field.label} must be a number.` };
  }
  if (field.kind === 'integer' && !Number.isInteger(n)) {
    return { ok: false, error: `${field.label} must be a whole number.` };
  }
  if (field.min !== undefined && n < field.min) {
    return { ok: false, error: `${field.label} must be at least ${field.min}.` };
  }
  if (field.max !== undefined && n > field.max) {
    return {
      ok: false,
      error: `${field.label} can be at most ${field.max} for you (the facility's limit).`
    };
  }
  return { ok: true, value: n };
}

/** All inputs -> {options} or the first error per field. */
export function collectOptions(
  fields: FormField[],
  raw: Record<string, string | boolean>
): { options: Record<string, unknown>; errors: Record<string, string> } {
  const options: Record<string, unknown> = {};
  const errors: Record<string, string> = {};
  for (const f of fields) {
    const r = checkField(f, raw[f.name] ?? f.initial);
    if (r.ok) {
      options[f.name] = r.value;
    } else {
      errors[f.name] = r.error;
    }
  }
  return { options, errors };
}

/** A worker count typed in the panel (scale to N, adapt min/max). */
export function checkWorkers(raw: string, what: string): Checked {
  const text = raw.trim();
  if (!/^\d{1,5}$/.test(text)) {
    return { ok: false, error: `${what} must be a whole number of workers (0 or more).` };
  }
  return { ok: true, value: Number(text) };
}
