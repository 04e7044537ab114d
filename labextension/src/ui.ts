/** Small shared pieces of the tabs: the message line and buttons. */

import { h, fill } from './dom';
import { PanelError } from './api';

export type Kind = 'info' | 'error' | 'warning' | 'success';

/** A line that shows one message (text only) at a time. */
export class MessageLine {
  readonly node = h('div', { className: 'jaf-message', role: 'status', 'aria-live': 'polite' });

  show(text: string, kind: Kind = 'info'): void {
    this.node.className = `jaf-message jaf-message-${kind}`;
    fill(this.node, text);
    this.node.hidden = !text;
  }

  error(e: unknown): void {
    if (e instanceof PanelError) {
      this.show(e.message, e.credentials ? 'warning' : 'error');
    } else {
      this.show(e instanceof Error ? e.message : String(e), 'error');
    }
  }

  clear(): void {
    this.show('');
  }
}

export function button(
  label: string,
  onClick: () => void,
  attrs: Record<string, string> = {}
): HTMLButtonElement {
  return h(
    'button',
    { className: 'jaf-button', type: 'button', onclick: () => onClick(), ...attrs },
    label
  );
}

/** Run an action with its button disabled meanwhile; errors go to `line`. */
export async function busy(
  btn: HTMLButtonElement | null,
  line: MessageLine,
  fn: () => Promise<void>
): Promise<void> {
  if (btn) {
    btn.disabled = true;
  }
  try {
    await fn();
  } catch (e) {
    line.error(e);
  } finally {
    if (btn) {
      btn.disabled = false;
    }
  }
}
