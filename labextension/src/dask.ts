/**
 * The Dask tab: the user's gateway clusters (notebooks' included), a "New cluster"
 * form drawn from the gateway's options, scale, adapt, stop, the dashboard in a Lab
 * tab, "Insert client code", and the Dask quota left.
 */

import { Widget } from '@lumino/widgets';

import { postJSON, requestAPI } from './api';
import { PanelContext } from './context';
import { h, fill } from './dom';
import { formatBytes, formatDuration, plural } from './format';
import { checkWorkers, collectOptions, FormField, formFields, GatewayOption } from './options';
import { safeHttpUrl } from './safe';
import { daskClientCode } from './snippets';
import { busy, button, MessageLine } from './ui';

export interface Cluster {
  name: string;
  status: string;
  options: Record<string, unknown>;
  dashboard_link: string | null;
  start_time: number | null;
  workers: number | null;
  cores: number | null;
  memory: number | null;
}

interface Capped {
  capped: boolean;
  reason: string | null;
}

const POLL_MS = 5000;
// the quota comes from af-accounting: ask it on every 6th poll (30 s) and after actions
const QUOTA_EVERY = 6;

export class DaskTab extends Widget {
  private line = new MessageLine();
  private quota = h('div', { className: 'jaf-quota' });
  private list = h('div', { className: 'jaf-clusters' });
  private form = h('form', { className: 'jaf-form', hidden: true });
  private fields: FormField[] = [];
  private notes = new Map<string, string>(); // capped reasons per cluster
  private timer: number | undefined;
  private polls = 0;

  constructor(private ctx: PanelContext) {
    super();
    this.addClass('jaf-tab');
    this.addClass('jaf-dask');
    this.id = 'jhub-af-dask';
    this.title.label = 'Dask';
    const newButton = button('New cluster', () => void this.toggleForm(), {
      'data-action': 'new-cluster'
    });
    const refresh = button('Refresh', () => void this.refresh(), { 'data-action': 'refresh' });
    this.node.append(
      h('div', { className: 'jaf-toolbar' }, newButton, refresh),
      this.quota,
      this.line.node,
      this.form,
      this.list
    );
  }

  protected onAfterAttach(): void {
    // the panel is attached when Lab starts, usually closed: ask nothing until shown
    if (this.isVisible) {
      void this.refresh();
    }
    this.timer = window.setInterval(() => {
      if (this.isVisible) {
        void this.refresh(true, true);
      }
    }, POLL_MS);
  }

  protected onBeforeDetach(): void {
    window.clearInterval(this.timer);
  }

  protected onAfterShow(): void {
    void this.refresh(true);
  }

  /** `poll`: a timer's refresh, which asks af-accounting only now and then. */
  async refresh(quiet = false, poll = false): Promise<void> {
    try {
      const body = await requestAPI<{ clusters: Cluster[] }>('dask', 'dask/clusters');
      this.render(body.clusters);
      if (!quiet) {
        this.line.clear();
      }
    } catch (e) {
      this.line.error(e);
    }
    if (!poll || this.polls++ % QUOTA_EVERY === 0) {
      void this.refreshQuota();
    }
  }

  private async refreshQuota(): Promise<void> {
    try {
      const body = await requestAPI<{
        policy: { remaining?: Record<string, { left: number | null; limit: number | null }> };
      }>('usage', 'usage');
      const r = body.policy?.remaining ?? {};
      const parts: string[] = [];
      for (const [key, noun] of [
        ['dask_workers', 'workers'],
        ['dask_clusters', 'clusters'],
        ['dask_cores', 'cores']
      ]) {
        const e = r[key];
        if (e && e.limit !== null) {
          parts.push(`${e.left} of ${e.limit} ${noun}`);
        }
      }
      fill(this.quota, parts.length ? `Quota left: ${parts.join(', ')}` : '');
    } catch {
      fill(this.quota, ''); // the Usage tab says why
    }
  }

  private async toggleForm(): Promise<void> {
    if (!this.form.hidden) {
      this.form.hidden = true;
      return;
    }
    try {
      const body = await requestAPI<{ cluster_options: GatewayOption[] }>('dask', 'dask/options');
      this.fields = formFields(body.cluster_options);
      this.drawForm();
      this.form.hidden = false;
    } catch (e) {
      this.line.error(e);
    }
  }

  private drawForm(): void {
    const rows = this.fields.map(f => {
      let input: HTMLInputElement | HTMLSelectElement;
      if (f.kind === 'select') {
        input = h(
          'select',
          { name: f.name },
          ...(f.choices ?? []).map(c => h('option', { value: c }, c))
        );
        input.value = String(f.initial);
      } else if (f.kind === 'checkbox') {
        input = h('input', { name: f.name, type: 'checkbox' });
        (input as HTMLInputElement).checked = Boolean(f.initial);
      } else {
        const isNumber = f.kind === 'number' || f.kind === 'integer';
        input = h('input', {
          name: f.name,
          type: isNumber ? 'number' : 'text',
          min: f.min,
          max: f.max,
          step: f.step,
          value: String(f.initial)
        });
      }
      return h(
        'label',
        { className: 'jaf-field' },
        h('span', { className: 'jaf-field-label' }, f.label),
        input,
        f.hint ? h('span', { className: 'jaf-hint' }, f.hint) : null,
        h('span', { className: 'jaf-field-error', 'data-error-for': f.name })
      );
    });
    const create = h(
      'button',
      { className: 'jaf-button jaf-primary', type: 'submit', 'data-action': 'create' },
      'Create'
    );
    fill(this.form, h('div', { className: 'jaf-form-title' }, 'New cluster'), ...rows, create);
    this.form.onsubmit = ev => {
      ev.preventDefault();
      void busy(create, this.line, () => this.create());
    };
  }

  private async create(): Promise<void> {
    const raw: Record<string, string | boolean> = {};
    for (const f of this.fields) {
      const el = this.form.querySelector(
        `[name="${CSS.escape(f.name)}"]`
      ) as HTMLInputElement | null;
      if (el) {
        raw[f.name] = f.kind === 'checkbox' ? el.checked : el.value;
      }
    }
    const { options, errors } = collectOptions(this.fields, raw);
    for (const el of Array.from(this.form.querySelectorAll('[data-error-for]'))) {
      fill(el, errors[el.getAttribute('data-error-for') ?? ''] ?? '');
    }
    if (Object.keys(errors).length) {
      this.line.show('Correct the marked fields.', 'error');
      return;
    }
    this.line.show('Starting a cluster…');
    const cluster = await postJSON<Cluster>('dask', 'dask/clusters', { cluster_options: options });
    this.form.hidden = true;
    this.line.show(`Cluster ${cluster.name} is starting.`, 'success');
    await this.refresh(true);
  }

  private render(clusters: Cluster[]): void {
    if (!clusters.length) {
      fill(
        this.list,
        h(
          'p',
          { className: 'jaf-empty' },
          'No clusters running. Create one here or with Gateway().new_cluster() in a notebook.'
        )
      );
      return;
    }
    // keep what the user is typing: redraw only cards whose data changed
    const seen = new Set<string>();
    for (const c of clusters) {
      seen.add(c.name);
      // the age is shown in minutes: redraw at least once a minute
      const key = JSON.stringify([c, this.notes.get(c.name) ?? '', Math.floor(Date.now() / 60000)]);
      let card = this.list.querySelector(
        `[data-cluster="${CSS.escape(c.name)}"]`
      ) as HTMLElement | null;
      if (card && card.dataset.key === key) {
        continue;
      }
      const fresh = this.card(c);
      fresh.dataset.key = key;
      if (card) {
        const typing = card.contains(document.activeElement);
        if (typing) {
          continue;
        }
        card.replaceWith(fresh);
      } else {
        this.list.appendChild(fresh);
      }
      card = fresh;
    }
    for (const el of Array.from(this.list.children)) {
      const name = (el as HTMLElement).dataset.cluster;
      if (!name || !seen.has(name)) {
        el.remove();
      }
    }
  }

  private card(c: Cluster): HTMLElement {
    const line = new MessageLine();
    const note = this.notes.get(c.name);
    if (note) {
      line.show(note, 'warning');
    }
    const n = h('input', {
      type: 'number',
      min: 0,
      value: c.workers ?? 0,
      className: 'jaf-small',
      'aria-label': 'Workers',
      name: 'scale-n'
    });
    const min = h('input', {
      type: 'number',
      min: 0,
      value: 0,
      className: 'jaf-small',
      'aria-label': 'Minimum workers',
      name: 'adapt-min'
    });
    const max = h('input', {
      type: 'number',
      min: 0,
      value: 2,
      className: 'jaf-small',
      'aria-label': 'Maximum workers',
      name: 'adapt-max'
    });
    const running = c.status === 'running';
    const scaleBtn: HTMLButtonElement = button(
      'Scale',
      () => void busy(scaleBtn, line, () => this.scale(c, n.value)),
      { 'data-action': 'scale' }
    );
    const adaptBtn: HTMLButtonElement = button(
      'Adapt',
      () => void busy(adaptBtn, line, () => this.adapt(c, min.value, max.value)),
      { 'data-action': 'adapt' }
    );
    const stopBtn: HTMLButtonElement = button(
      'Stop',
      () => void busy(stopBtn, line, () => this.stop(c)),
      { 'data-action': 'stop' }
    );
    const insertBtn: HTMLButtonElement = button(
      'Insert client code',
      () => void busy(insertBtn, line, () => this.ctx.insertCode(daskClientCode(c.name))),
      {
        'data-action': 'insert-client'
      }
    );
    const dashboard = safeHttpUrl(c.dashboard_link, window.location.href);
    const dashBtn = dashboard
      ? button(
          'Dashboard',
          () =>
            this.ctx.openInTab(
              dashboard,
              `Dask ${c.name.slice(0, 8)}`,
              `jhub-af-dashboard-${c.name}`
            ),
          {
            'data-action': 'dashboard'
          }
        )
      : null;
    scaleBtn.disabled = adaptBtn.disabled = !running;
    const age = c.start_time ? formatDuration(Date.now() / 1000 - c.start_time) : '—';
    const opts = Object.entries(c.options || {})
      .filter(([, v]) => typeof v !== 'object')
      .map(([k, v]) => `${k}=${String(v)}`)
      .join(', ');
    return h(
      'div',
      { className: `jaf-card jaf-status-${c.status}`, 'data-cluster': c.name },
      h(
        'div',
        { className: 'jaf-card-title' },
        h('span', { className: 'jaf-name', title: c.name }, c.name),
        h('span', { className: 'jaf-badge' }, c.status)
      ),
      h(
        'div',
        { className: 'jaf-facts' },
        `Workers ${c.workers ?? '—'} · cores ${c.cores ?? '—'} · memory ${formatBytes(c.memory)} · up ${age}`
      ),
      opts ? h('div', { className: 'jaf-options' }, opts) : null,
      h('div', { className: 'jaf-row' }, 'Scale to', n, scaleBtn),
      h('div', { className: 'jaf-row' }, 'Adaptive', min, '–', max, adaptBtn),
      h('div', { className: 'jaf-row' }, dashBtn, insertBtn, stopBtn),
      line.node
    );
  }

  private async scale(c: Cluster, raw: string): Promise<void> {
    const n = checkWorkers(raw, 'The number of workers');
    if (!n.ok) {
      throw new Error(n.error);
    }
    const r = await postJSON<Capped>('dask', `dask/clusters/${encodeURIComponent(c.name)}/scale`, {
      n: n.value
    });
    this.noteCapped(c, r, `Scaling to ${plural(n.value as number, 'worker')}.`);
    await this.refresh(true);
  }

  private async adapt(c: Cluster, rawMin: string, rawMax: string): Promise<void> {
    const lo = checkWorkers(rawMin, 'The minimum');
    const hi = checkWorkers(rawMax, 'The maximum');
    if (!lo.ok || !hi.ok) {
      throw new Error(!lo.ok ? lo.error : (hi as { error: string }).error);
    }
    if ((lo.value as number) > (hi.value as number)) {
      throw new Error('The minimum must not be larger than the maximum.');
    }
    const r = await postJSON<Capped>('dask', `dask/clusters/${encodeURIComponent(c.name)}/adapt`, {
      minimum: lo.value,
      maximum: hi.value
    });
    this.noteCapped(c, r, `Adaptive between ${lo.value} and ${hi.value} workers.`);
    await this.refresh(true);
  }

  private noteCapped(c: Cluster, r: Capped, ok: string): void {
    if (r.capped && r.reason) {
      this.notes.set(c.name, r.reason);
      this.line.clear(); // the reason is on the cluster's card
    } else {
      this.notes.delete(c.name);
      this.line.show(ok, 'success');
    }
  }

  private async stop(c: Cluster): Promise<void> {
    await requestAPI('dask', `dask/clusters/${encodeURIComponent(c.name)}`, { method: 'DELETE' });
    this.notes.delete(c.name);
    this.line.show(`Cluster ${c.name} is stopping.`, 'success');
    await this.refresh(true);
  }
}
