/** The demo page's DOM outside the editor: connection state, version, who is here. */
import type { ConnectionState } from '../../client/client.ts';
import type { Mode } from '../../protocol/messages.ts';

export interface PeerView {
  id: string;
  mode: Mode;
  /** From the peer's selections; null until it sent one (a SharePython page never does). */
  name: string | null;
  colour: number;
}

export interface StateView {
  state: ConnectionState;
  online: boolean;
  waiting: number;
  version: number;
  closedCode: number | null;
  mode: Mode;
  problem?: string;
}

/** The closes after which the SDK stops trying (PROTOCOL.md §5), in words. */
const CLOSE_WORDS: Record<number, string> = {
  4401: 'this server refused the codespace token',
  4404: 'no such codespace',
  1000: 'closed by the page',
};

function byId(id: string): HTMLElement | null {
  return document.getElementById(id);
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

/** `data-state` is one of connecting, connected, reconnecting, offline, closed (styled, and read by tests). */
export function renderState(view: StateView): void {
  const badge = byId('state');
  if (!badge) return;
  const waiting = view.waiting > 0 ? ` · ${plural(view.waiting, 'edit')} waiting` : '';
  let state: string;
  let text: string;
  if (view.problem) {
    state = 'closed';
    text = view.problem;
  } else if (view.state === 'closed') {
    state = 'closed';
    const why = view.closedCode !== null ? CLOSE_WORDS[view.closedCode] ?? `code ${view.closedCode}` : '';
    text = `closed${why ? `: ${why}` : ''}${waiting}`;
  } else if (!view.online) {
    state = 'offline';
    text = `offline${waiting}`;
  } else if (view.state === 'open') {
    state = 'connected';
    text = `connected${view.mode === 'view_only' ? ' · view only' : ''}${waiting}`;
  } else {
    state = view.state;
    text = `${view.state}…${waiting}`;
  }
  badge.dataset.state = state;
  // Lets the stylesheet dim other people's cursors while they may be out of date.
  document.body.dataset.connection = state;
  badge.dataset.waiting = String(view.waiting);
  badge.textContent = text;
  const version = byId('version');
  if (version) version.textContent = String(view.version);
}

export function renderPeers(self: { name: string; colour: number; id: string }, peers: readonly PeerView[]): void {
  const list = byId('peers');
  if (!list) return;
  const items = [itemOf(`${self.name} (you)`, self.colour, self.id, 'self')];
  for (const peer of [...peers].sort((a, b) => (a.name ?? '~').localeCompare(b.name ?? '~'))) {
    const label = peer.name ?? `guest ${peer.id.slice(0, 4)}`;
    items.push(itemOf(peer.mode === 'view_only' ? `${label} (viewing)` : label, peer.colour, peer.id, 'peer'));
  }
  list.replaceChildren(...items);
  const count = byId('peer-count');
  if (count) count.textContent = String(peers.length + 1);
}

function itemOf(label: string, colour: number, id: string, kind: 'self' | 'peer'): HTMLLIElement {
  const item = document.createElement('li');
  item.className = `peer ${kind}`;
  item.dataset.peer = id;
  const dot = document.createElement('span');
  dot.className = `dot peer-${colour}`;
  const name = document.createElement('span');
  name.className = 'peer-name';
  name.textContent = label;
  item.append(dot, name);
  return item;
}

/** How this codespace appears on /status: 8 hex digits of the SHA-256 of its id (never the id). */
export async function showStatusId(codespace: string): Promise<void> {
  const target = byId('status-id');
  if (!target) return;
  if (!crypto.subtle) {
    target.textContent = '(needs https or localhost)';
    return;
  }
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(codespace)));
  const hex = Array.from(digest.slice(0, 4), (byte) => byte.toString(16).padStart(2, '0')).join('');
  target.textContent = `${codespace.startsWith('tmp-') ? 'tmp' : 'named'} ${hex}`;
  target.dataset.statusId = hex;
}
