/**
 * The Usage tab: my quotas and my usage this period, from af-accounting (through the
 * notebook server), with a small SVG bar chart (no chart library).
 */

import { Widget } from '@lumino/widgets';

import { requestAPI } from './api';
import { Bar, quotaBars, Remaining, remainingFrom } from './chart';
import { fill, h, svg } from './dom';
import { formatAmount } from './format';
import { button, MessageLine } from './ui';

interface UsageReport {
  usage: {
    user: string;
    period: { name: string; start: number | null; end: number | null };
    usage: Record<string, number>;
    running: unknown[];
  };
  policy: {
    warn_at?: number;
    limits: Record<string, { value: number | null; source?: string; group?: string }>;
    remaining?: Record<string, Remaining>;
  };
}

const WIDTH = 240;
const ROW = 30;

export class UsageTab extends Widget {
  private line = new MessageLine();
  private body = h('div', { className: 'jaf-usage-body' });

  constructor() {
    super();
    this.addClass('jaf-tab');
    this.addClass('jaf-usage');
    this.id = 'jhub-af-usage';
    this.title.label = 'Usage';
    this.node.append(
      h(
        'div',
        { className: 'jaf-toolbar' },
        button('Refresh', () => void this.refresh(), { 'data-action': 'refresh-usage' })
      ),
      this.line.node,
      this.body
    );
  }

  protected onAfterShow(): void {
    void this.refresh();
  }

  async refresh(): Promise<void> {
    try {
      const report = await requestAPI<UsageReport>('usage', 'usage');
      this.line.clear();
      this.draw(report);
    } catch (e) {
      this.line.error(e);
    }
  }

  private draw(r: UsageReport): void {
    const u = r.usage.usage || {};
    const period = r.usage.period || { name: 'period', start: null, end: null };
    const since = period.start ? new Date(period.start * 1000).toLocaleDateString() : '';
    const remaining = r.policy.remaining ?? remainingFrom(r.policy.limits || {}, u);
    const bars = quotaBars(remaining, r.policy.warn_at ?? 0.8);
    fill(
      this.body,
      h('h3', {}, `This ${period.name}${since ? ` (since ${since})` : ''}`),
      h(
        'dl',
        { className: 'jaf-totals' },
        h('dt', {}, 'Core-hours'),
        h('dd', { 'data-total': 'core_hours' }, formatAmount(u.core_hours ?? 0)),
        h('dt', {}, 'GPU-hours'),
        h('dd', { 'data-total': 'gpu_hours' }, formatAmount(u.gpu_hours ?? 0)),
        h('dt', {}, 'Memory GiB-hours'),
        h('dd', {}, formatAmount(u.memory_gib_hours ?? 0)),
        h('dt', {}, 'Running now'),
        h('dd', {}, String((r.usage.running || []).length))
      ),
      h('h3', {}, 'My quotas'),
      bars.length ? chart(bars) : h('p', { className: 'jaf-empty' }, 'No quota applies to you.')
    );
  }
}

/** One row per quota: label, a bar filled to the fraction used, "used of limit". */
export function chart(bars: Bar[]): SVGElement {
  const root = svg('svg', {
    class: 'jaf-chart',
    width: WIDTH,
    height: bars.length * ROW,
    viewBox: `0 0 ${WIDTH} ${bars.length * ROW}`,
    role: 'img',
    'aria-label': 'My quotas: used of limit'
  });
  bars.forEach((b, i) => {
    const y = i * ROW;
    const label = svg('text', { x: 0, y: y + 10, class: 'jaf-chart-label' });
    label.textContent = `${b.label}: ${b.text}`;
    const track = svg('rect', {
      x: 0,
      y: y + 14,
      width: WIDTH,
      height: 8,
      rx: 3,
      class: 'jaf-chart-track'
    });
    const fillRect = svg('rect', {
      x: 0,
      y: y + 14,
      width: Math.round(WIDTH * b.fraction),
      height: 8,
      rx: 3,
      class: `jaf-chart-bar jaf-chart-${b.level}`,
      'data-quota': b.key
    });
    root.append(label, track, fillRect);
  });
  return root;
}
