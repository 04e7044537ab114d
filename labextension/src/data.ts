/**
 * The Data tab (Rucio): instance picker, DID search (scope + pattern with wildcards +
 * type), container -> dataset -> files, sizes and events, replicas per RSE with
 * their PFNs (copy, insert a snippet, download with progress), replica requests
 * where the facility allows them. Lists come a page at a time from the server.
 * Every name is set as text (dom.ts), never as HTML.
 */

import { Widget } from '@lumino/widgets';

import { postJSON, requestAPI } from './api';
import { PanelContext } from './context';
import { fill, h } from './dom';
import { formatAmount, formatBytes } from './format';
import {
  answered,
  canNext,
  canPrev,
  firstPage,
  nextPage,
  Page,
  pageLabel,
  pageQuery,
  prevPage
} from './paging';
import { checkTarget, didString, splitDid } from './safe';
import { busy, button, MessageLine } from './ui';

export interface Instance {
  name: string;
  url: string;
  auth: string;
  replica_requests: boolean;
  destination_rses: string[];
}

export interface Replica {
  rse: string;
  pfns: string[];
}

export interface Did {
  scope: string;
  name: string;
  type: string;
  bytes: number | null;
  events: number | null;
  replicas?: Replica[];
}

interface Listing {
  items: Did[];
  page: number;
  page_size: number;
  has_more: boolean;
  did?: Did;
}

interface Download {
  id: string;
  state: 'running' | 'done' | 'failed';
  bytes_done: number;
  bytes_total: number | null;
  path: string;
  error: string | null;
}

type View =
  { kind: 'search'; scope: string; pattern: string; type: string } | { kind: 'contents'; did: Did };

const TYPES = ['all', 'container', 'dataset', 'file'];

export class DataTab extends Widget {
  private line = new MessageLine();
  private instances: Instance[] = [];
  private picker = h('select', {
    className: 'jaf-instance',
    'aria-label': 'Rucio instance',
    name: 'instance'
  });
  private scope = h('input', {
    type: 'text',
    placeholder: 'scope',
    name: 'scope',
    className: 'jaf-scope',
    'aria-label': 'Scope'
  });
  private pattern = h('input', {
    type: 'text',
    placeholder: 'name pattern, e.g. data18*',
    name: 'pattern',
    'aria-label': 'Name pattern'
  });
  private type = h(
    'select',
    { name: 'type', 'aria-label': 'Type' },
    ...TYPES.map(t => h('option', { value: t }, t))
  );
  private crumbs = h('div', { className: 'jaf-crumbs' });
  private list = h('div', { className: 'jaf-dids' });
  private pager = h('div', { className: 'jaf-pager' });
  private stack: View[] = [];
  private page: Page = firstPage();
  private loaded = false;
  private seq = 0; // the latest list request: older answers arriving late are dropped

  constructor(private ctx: PanelContext) {
    super();
    this.addClass('jaf-tab');
    this.addClass('jaf-data');
    this.id = 'jhub-af-data';
    this.title.label = 'Data';
    const search = h(
      'form',
      { className: 'jaf-search' },
      h('div', { className: 'jaf-row' }, 'Rucio', this.picker),
      h('div', { className: 'jaf-row' }, this.scope, h('span', {}, ':'), this.pattern),
      h(
        'div',
        { className: 'jaf-row' },
        'Type',
        this.type,
        h(
          'button',
          { className: 'jaf-button jaf-primary', type: 'submit', 'data-action': 'search' },
          'Search'
        )
      )
    );
    this.picker.onchange = () => {
      this.stack = [];
      fill(this.crumbs);
      fill(this.list);
      fill(this.pager);
    };
    search.onsubmit = ev => {
      ev.preventDefault();
      const { scope, pattern } = splitDid(this.pattern.value, this.scope.value);
      if (!scope) {
        this.line.show(
          'Give a scope (like user.alice or data18_13TeV), or type scope:pattern.',
          'error'
        );
        return;
      }
      this.stack = [{ kind: 'search', scope, pattern, type: this.type.value }];
      this.page = firstPage(this.page.pageSize);
      void this.load();
    };
    this.node.append(search, this.line.node, this.crumbs, this.list, this.pager);
  }

  protected onAfterShow(): void {
    if (!this.loaded) {
      void this.loadInstances();
    }
  }

  protected onAfterAttach(): void {
    if (this.isVisible && !this.loaded) {
      void this.loadInstances();
    }
  }

  private get instance(): Instance | undefined {
    return this.instances.find(i => i.name === this.picker.value);
  }

  private async loadInstances(): Promise<void> {
    this.loaded = true;
    try {
      const body = await requestAPI<{ instances: Instance[] }>('rucio', 'rucio/instances');
      this.instances = body.instances || [];
      fill(
        this.picker,
        ...this.instances.map(i => h('option', { value: i.name, title: i.url }, i.name))
      );
      if (!this.instances.length) {
        this.line.show('This facility has no Rucio instance configured; ask its admins.', 'info');
      }
    } catch (e) {
      this.loaded = false;
      this.line.error(e);
    }
  }

  private base(): string {
    const inst = this.instance;
    if (!inst) {
      throw new Error('Choose a Rucio instance first.');
    }
    return `rucio/${encodeURIComponent(inst.name)}`;
  }

  private async load(): Promise<void> {
    const view = this.stack[this.stack.length - 1];
    if (!view) {
      return;
    }
    const seq = ++this.seq;
    this.line.show('Loading…');
    try {
      let body: Listing;
      if (view.kind === 'search') {
        body = await requestAPI<Listing>(
          'rucio',
          `${this.base()}/dids?${pageQuery(this.page, { scope: view.scope, pattern: view.pattern, type: view.type })}`
        );
      } else {
        body = await requestAPI<Listing>(
          'rucio',
          `${this.base()}/contents?${pageQuery(this.page, { scope: view.did.scope, name: view.did.name })}`
        );
      }
      if (seq !== this.seq) {
        return;
      }
      if (view.kind === 'contents' && body.did) {
        view.did = { ...view.did, ...body.did };
      }
      this.page = answered(this.page, body);
      this.line.clear();
      this.drawCrumbs();
      this.drawList(body.items || []);
      this.drawPager();
    } catch (e) {
      if (seq === this.seq) {
        this.line.error(e);
      }
    }
  }

  private drawCrumbs(): void {
    const parts = this.stack.map((v, i) => {
      const text = v.kind === 'search' ? `Search ${v.scope}:${v.pattern}` : v.did.name;
      const last = i === this.stack.length - 1;
      return last
        ? h('span', { className: 'jaf-crumb jaf-crumb-here' }, text)
        : h(
            'a',
            {
              className: 'jaf-crumb',
              href: '#',
              onclick: (ev: Event) => {
                ev.preventDefault();
                this.goTo(i);
              }
            },
            text
          );
    });
    const joined: (HTMLElement | string)[] = [];
    parts.forEach((p, i) => {
      if (i) {
        joined.push(' › ');
      }
      joined.push(p);
    });
    const view = this.stack[this.stack.length - 1];
    const summary =
      view && view.kind === 'contents'
        ? h(
            'div',
            { className: 'jaf-facts' },
            `${view.did.type} · ${formatBytes(view.did.bytes)}${view.did.events !== null && view.did.events !== undefined ? ` · ${formatAmount(view.did.events)} events` : ''}`
          )
        : null;
    fill(this.crumbs, h('div', {}, ...joined), summary);
  }

  private goTo(index: number): void {
    this.stack = this.stack.slice(0, index + 1);
    this.page = firstPage(this.page.pageSize);
    void this.load();
  }

  private open(did: Did): void {
    this.stack.push({ kind: 'contents', did });
    this.page = firstPage(this.page.pageSize);
    void this.load();
  }

  private drawList(items: Did[]): void {
    if (!items.length) {
      fill(
        this.list,
        h('p', { className: 'jaf-empty' }, 'Nothing found. Wildcards: * matches any characters.')
      );
      return;
    }
    fill(this.list, ...items.map(d => this.row(d)));
  }

  private row(d: Did): HTMLElement {
    const details = h('div', { className: 'jaf-details', hidden: true });
    const isFile = d.type.toLowerCase() === 'file';
    const name = isFile
      ? h('span', { className: 'jaf-name', title: didString(d.scope, d.name) }, d.name)
      : h(
          'a',
          {
            className: 'jaf-name',
            href: '#',
            title: didString(d.scope, d.name),
            onclick: (ev: Event) => {
              ev.preventDefault();
              this.open(d);
            }
          },
          d.name
        );
    const facts = [d.type.toLowerCase(), formatBytes(d.bytes)];
    if (d.events !== null && d.events !== undefined) {
      facts.push(`${formatAmount(d.events)} events`);
    }
    const row = h(
      'div',
      { className: 'jaf-did', 'data-did': didString(d.scope, d.name) },
      h(
        'div',
        { className: 'jaf-card-title' },
        name,
        h('span', { className: 'jaf-badge' }, d.type.toLowerCase())
      ),
      h('div', { className: 'jaf-facts' }, facts.join(' · ')),
      details
    );
    if (isFile) {
      const toggle: HTMLButtonElement = button(
        'Replicas',
        () => void this.toggleReplicas(d, details, toggle),
        { 'data-action': 'replicas' }
      );
      row.querySelector('.jaf-card-title')?.appendChild(toggle);
      if (d.replicas) {
        this.drawReplicas(d, d.replicas, details);
      }
    }
    return row;
  }

  private async toggleReplicas(
    d: Did,
    details: HTMLElement,
    btn: HTMLButtonElement
  ): Promise<void> {
    if (!details.hidden) {
      details.hidden = true;
      return;
    }
    const line = new MessageLine();
    await busy(btn, line, async () => {
      let replicas = d.replicas;
      if (!replicas) {
        const q = new URLSearchParams({ scope: d.scope, name: d.name });
        replicas = (
          await requestAPI<{ replicas: Replica[] }>('rucio', `${this.base()}/replicas?${q}`)
        ).replicas;
        d.replicas = replicas;
      }
      this.drawReplicas(d, replicas, details);
    });
    if (line.node.textContent) {
      fill(details, line.node);
    }
    details.hidden = false;
  }

  private drawReplicas(d: Did, replicas: Replica[], details: HTMLElement): void {
    const line = new MessageLine();
    const target = h('input', {
      type: 'text',
      name: 'target',
      className: 'jaf-target',
      'aria-label': 'Save as',
      value: `rucio/${d.name.split('/').pop() || 'file'}`
    });
    const blocks = replicas.map(r =>
      h(
        'div',
        { className: 'jaf-replica', 'data-rse': r.rse },
        h('div', { className: 'jaf-rse' }, r.rse),
        ...r.pfns.map(pfn => this.pfnRow(d, pfn, line, target))
      )
    );
    if (!replicas.length) {
      blocks.push(h('p', { className: 'jaf-empty' }, 'No replica of this file is available.'));
    }
    const saveAs = replicas.length
      ? h('div', { className: 'jaf-row' }, 'Download to ~/', target)
      : null;
    fill(details, ...blocks, saveAs, this.requestRow(d, line), line.node);
  }

  private pfnRow(d: Did, pfn: string, line: MessageLine, target: HTMLInputElement): HTMLElement {
    const copy = button(
      'Copy',
      () => {
        this.ctx.copy(pfn);
        line.show('PFN copied.', 'success');
      },
      { 'data-action': 'copy-pfn' }
    );
    const snippet: HTMLButtonElement = button(
      'Insert snippet',
      () =>
        void busy(snippet, line, async () => {
          const q = new URLSearchParams({ scope: d.scope, name: d.name, pfn });
          const body = await requestAPI<{ code: string }>('rucio', `${this.base()}/snippet?${q}`);
          await this.ctx.insertCode(body.code);
          line.show('Snippet inserted into the notebook.', 'success');
        }),
      { 'data-action': 'insert-snippet' }
    );
    const download: HTMLButtonElement = button(
      'Download',
      () => void busy(download, line, () => this.download(d, pfn, target.value, line)),
      { 'data-action': 'download' }
    );
    return h(
      'div',
      { className: 'jaf-pfn' },
      h('code', { title: pfn }, pfn),
      h('div', { className: 'jaf-row' }, copy, snippet, download)
    );
  }

  private async download(d: Did, pfn: string, target: string, line: MessageLine): Promise<void> {
    const problem = checkTarget(target);
    if (problem) {
      line.show(problem, 'error');
      return;
    }
    const started = await postJSON<{ id: string }>('rucio', `${this.base()}/downloads`, {
      scope: d.scope,
      name: d.name,
      target: target.trim(),
      pfn
    });
    const bar = h('progress', { max: 1, value: 0, className: 'jaf-progress' });
    const text = h('span', {}, 'Starting…');
    line.show('');
    line.node.hidden = false;
    fill(line.node, bar, ' ', text);
    for (;;) {
      const s = await requestAPI<Download>(
        'rucio',
        `rucio/downloads/${encodeURIComponent(started.id)}`
      );
      if (s.bytes_total) {
        bar.max = s.bytes_total;
        bar.value = s.bytes_done;
      }
      fill(text, `${formatBytes(s.bytes_done)} of ${formatBytes(s.bytes_total)}`);
      if (s.state === 'done') {
        line.show(`Downloaded to ${s.path}.`, 'success');
        return;
      }
      if (s.state === 'failed') {
        line.show(s.error || 'The download failed.', 'error');
        return;
      }
      await new Promise(resolve => setTimeout(resolve, 500));
    }
  }

  private requestRow(d: Did, line: MessageLine): HTMLElement | null {
    const inst = this.instance;
    if (!inst || !inst.replica_requests || !inst.destination_rses.length) {
      return null;
    }
    const rse = h(
      'select',
      { name: 'rse', 'aria-label': 'Destination RSE' },
      ...inst.destination_rses.map(r => h('option', { value: r }, r))
    );
    const ask: HTMLButtonElement = button(
      'Request replica',
      () =>
        void busy(ask, line, async () => {
          const body = await postJSON<{ rule_id: string }>('rucio', `${this.base()}/rules`, {
            scope: d.scope,
            name: d.name,
            rse: rse.value
          });
          line.show(`Replica requested at ${rse.value} (rule ${body.rule_id}).`, 'success');
        }),
      { 'data-action': 'request-replica' }
    );
    return h('div', { className: 'jaf-row' }, 'Replica to', rse, ask);
  }

  private drawPager(): void {
    const prev = button(
      '‹ Previous',
      () => {
        this.page = prevPage(this.page);
        void this.load();
      },
      { 'data-action': 'prev-page' }
    );
    const next = button(
      'Next ›',
      () => {
        this.page = nextPage(this.page);
        void this.load();
      },
      { 'data-action': 'next-page' }
    );
    prev.disabled = !canPrev(this.page);
    next.disabled = !canNext(this.page);
    fill(this.pager, prev, h('span', { className: 'jaf-page-label' }, pageLabel(this.page)), next);
  }
}
