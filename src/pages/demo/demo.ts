/**
 * The demo editor at `/`: CodeMirror 6 on a codespace through the SDK and its CodeMirror
 * binding. The codespace is the one named after `#` in the address (a `tmp-` id, or any token the
 * server accepts), or a new `tmp-` one. Shows who is here with their cursors, the connection
 * state with the edits waiting for the server, and the version.
 */
import { EditorState, type Transaction } from '@codemirror/state';
import { EditorView } from '@codemirror/view';
import { basicSetup } from 'codemirror';
import { python } from '@codemirror/lang-python';
import { connect, type CodespaceClient } from '../../client/client.ts';
import { remote, syncEditor, type EditorSync } from '../../client/codemirror.ts';
import type { ConnectedData, PeerInfo } from '../../protocol/messages.ts';
import { PALETTE, cleanName, colourOf, loadIdentity, saveName, type Identity } from './identity.ts';
import { OfflineAwareWebSocket } from './offline_socket.ts';
import { removeRemoteSelection, remoteCursors, setRemoteSelection } from './remote_cursors.ts';
import { renderPeers, renderState, showStatusId, type PeerView } from './view.ts';
import './demo.css';

const TOKEN = /^[A-Za-z0-9_.:~=-]{1,256}$/;
/** Selections go out at most this often while the cursor moves. */
const SELECTION_EVERY_MS = 50;
const MAX_SELECTIONS = 100;

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`the page has no #${id}`);
  return found as T;
}

/** The token after `#`, or a fresh `tmp-` one written into the address (so the link can be shared). */
function tokenOfPage(): string | null {
  let raw = location.hash.slice(1);
  try {
    raw = decodeURIComponent(raw);
  } catch {
    return null;
  }
  if (raw === '') {
    const random = Array.from(crypto.getRandomValues(new Uint8Array(9)), (byte) => byte.toString(36).padStart(2, '0')).join('').slice(0, 14);
    raw = `tmp-${random}`;
    history.replaceState(null, '', `#${raw}`);
  }
  return TOKEN.test(raw) ? raw : null;
}

class DemoPage {
  readonly #client: CodespaceClient;
  readonly #identity: Identity;
  readonly #peers = new Map<string, PeerView>();
  #view: EditorView | null = null;
  #sync: EditorSync | null = null;
  /** Local edits made since the client was last fully acknowledged. */
  #waiting = 0;
  #selectionTimer: ReturnType<typeof setTimeout> | null = null;
  #closedCode: number | null = null;

  constructor(token: string) {
    this.#identity = loadIdentity();
    const base = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}`;
    this.#client = connect(base, token, { WebSocket: OfflineAwareWebSocket });
    this.#client.on('connected', (data) => this.#clientOnConnected(data));
    this.#client.on('resync', (data) => this.#clientOnConnected(data));
    this.#client.on('state', () => this.#render());
    this.#client.on('ack', () => this.#clientOnAck());
    this.#client.on('change', () => this.#render());
    this.#client.on('replaced', () => this.#render());
    this.#client.on('closed', ({ code }) => (this.#closedCode = code));
    this.#client.on('selection', (message) => this.#clientOnSelection(message));
    this.#client.on('presence', ({ kind, peer }) => this.#clientOnPresence(kind, peer));
    window.addEventListener('online', () => this.#render());
    window.addEventListener('offline', () => this.#render());
    window.addEventListener('hashchange', () => location.reload());
    this.#setUpControls(token);
    this.#render();
  }

  #setUpControls(token: string): void {
    const link = element<HTMLInputElement>('share-link');
    link.value = `${location.origin}${location.pathname}#${token}`;
    element<HTMLButtonElement>('copy').addEventListener('click', () => this.#copyLink(link));
    const name = element<HTMLInputElement>('name');
    name.value = this.#identity.name;
    name.addEventListener('change', () => {
      const cleaned = cleanName(name.value);
      if (!cleaned) return void (name.value = this.#identity.name);
      name.value = this.#identity.name = cleaned;
      saveName(cleaned);
      this.#sendSelection();
      this.#render();
    });
  }

  async #copyLink(link: HTMLInputElement): Promise<void> {
    const button = element<HTMLButtonElement>('copy');
    try {
      await navigator.clipboard.writeText(link.value);
      button.textContent = 'Copied';
    } catch {
      // No clipboard permission (or not a secure context): select it for the user to copy.
      link.select();
      button.textContent = 'Press Ctrl+C';
    }
    setTimeout(() => (button.textContent = 'Copy link'), 1500);
  }

  #clientOnConnected(data: ConnectedData): void {
    const known = new Map(this.#peers);
    this.#peers.clear();
    for (const peer of data.peers ?? []) this.#peers.set(peer.id, known.get(peer.id) ?? { id: peer.id, mode: peer.mode, name: null, colour: colourOf(null, peer.id) });
    if (!this.#view) this.#createEditor(data);
    this.#view!.dispatch({ effects: [...known.keys()].filter((id) => !this.#peers.has(id)).map((id) => removeRemoteSelection.of(id)) });
    void showStatusId(data.codespace);
    this.#sendSelection();
    this.#render();
  }

  #createEditor(data: ConnectedData): void {
    const readOnly = data.mode === 'view_only';
    this.#view = new EditorView({
      parent: element('editor'),
      state: EditorState.create({
        doc: this.#client.text,
        extensions: [
          basicSetup,
          python(),
          // PROTOCOL.md §2: line breaks are "\n" on the wire, whatever the platform.
          EditorState.lineSeparator.of('\n'),
          EditorState.readOnly.of(readOnly),
          EditorView.editable.of(!readOnly),
          remoteCursors(),
          // CodeMirror writes its styles into a <style> element: the page's policy lets in only
          // the one carrying this response's nonce.
          EditorView.cspNonce.of(document.querySelector('meta[name="csp-nonce"]')?.getAttribute('content') ?? ''),
        ],
      }),
      dispatchTransactions: (transactions, view) => this.#editorOnTransactions(transactions, view),
    });
    this.#sync = syncEditor(this.#client, this.#view);
  }

  #editorOnTransactions(transactions: readonly Transaction[], view: EditorView): void {
    view.update(transactions);
    this.#sync?.update(transactions);
    // The binding marks what came from the server; everything else was done here.
    const local = transactions.filter((transaction) => !transaction.annotation(remote));
    const edits = local.filter((transaction) => transaction.docChanged).length;
    if (edits > 0) {
      this.#waiting += edits;
      this.#render();
    }
    if (local.some((transaction) => transaction.docChanged || transaction.selection)) this.#scheduleSelection();
  }

  #clientOnAck(): void {
    if (this.#client.synced) this.#waiting = 0;
    this.#render();
  }

  #scheduleSelection(): void {
    if (this.#selectionTimer) return;
    this.#selectionTimer = setTimeout(() => {
      this.#selectionTimer = null;
      this.#sendSelection();
    }, SELECTION_EVERY_MS);
  }

  #sendSelection(): void {
    if (!this.#view || this.#client.state !== 'open') return;
    const ranges = this.#view.state.selection.ranges.slice(0, MAX_SELECTIONS).map((range) => ({ anchor: range.anchor, head: range.head }));
    this.#client.setSelection(ranges, { name: this.#identity.name, color: PALETTE[this.#identity.colour] ?? PALETTE[0] });
  }

  #clientOnSelection(message: Record<string, unknown>): void {
    const sender = message.sender;
    if (typeof sender !== 'string' || sender === this.#client.id || !this.#view) return;
    const ranges = Array.isArray(message.selections)
      ? message.selections.slice(0, MAX_SELECTIONS).filter((range): range is { anchor: number; head: number } => Number.isInteger(range?.anchor) && Number.isInteger(range?.head) && range.anchor >= 0 && range.head >= 0)
      : [];
    const name = typeof message.name === 'string' ? cleanName(message.name) : '';
    const peer = this.#peers.get(sender) ?? { id: sender, mode: 'edit' as const, name: null, colour: 0 };
    peer.name = name || peer.name;
    peer.colour = colourOf(message.color, sender);
    this.#peers.set(sender, peer);
    this.#view.dispatch({ effects: setRemoteSelection.of({ peer: sender, name: peer.name ?? `guest ${sender.slice(0, 4)}`, colour: peer.colour, ranges }) });
    this.#render();
  }

  #clientOnPresence(kind: 'joined' | 'left', peer: PeerInfo): void {
    if (kind === 'joined') {
      this.#peers.set(peer.id, { id: peer.id, mode: peer.mode, name: null, colour: colourOf(null, peer.id) });
      // The newcomer has not seen our selection yet: it carries our name.
      this.#sendSelection();
    } else {
      this.#peers.delete(peer.id);
      this.#view?.dispatch({ effects: removeRemoteSelection.of(peer.id) });
    }
    this.#render();
  }

  #render(): void {
    if (this.#client.synced) this.#waiting = 0;
    renderState({ state: this.#client.state, online: navigator.onLine, waiting: this.#waiting, version: this.#client.version, closedCode: this.#closedCode, mode: this.#client.mode });
    renderPeers({ name: this.#identity.name, colour: this.#identity.colour, id: this.#client.id }, [...this.#peers.values()]);
  }
}

const token = tokenOfPage();
if (token) new DemoPage(token);
else renderState({ state: 'closed', online: navigator.onLine, waiting: 0, version: 0, closedCode: null, mode: 'edit', problem: 'The address after # is not a valid codespace token.' });
