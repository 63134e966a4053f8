/**
 * Edit storms driven by SDK clients: each client makes random edits on its own text, the SDK
 * sends and rebases them, and the storm records what every client saw for the asserts.
 */
import { WebSocket } from 'ws';
import { connect, type CodespaceClient, type WebSocketConstructor } from '../../src/client/client.ts';
import type { ChangeSpec } from '../../src/protocol/messages.ts';
import { waitFor } from './ws_client.ts';
import { applySpecs } from './random_edits.ts';

export interface Tracked {
  client: CodespaceClient;
  /** Every version this client learnt of (remote changes and its own acks), in arrival order. */
  versions: number[];
  /** Tokens this client inserted (the SDK resends until acked, so all must survive). */
  inserted: Set<string>;
  /** Acks received: each is one version (the SDK sends buffered local edits as one change). */
  acks: number;
  errors: string[];
  resyncs: number;
  /**
   * The text as an editor would hold it, driven by events only: its own edits, each change's
   * `localChanges`, and `replaced`. It must always equal `client.text`.
   */
  mirror: string;
}

/** A local edit, as an editor makes it: on its own text, then handed to the SDK. */
export function editLocal(tracked: Tracked, changes: ChangeSpec[]): void {
  tracked.mirror = applySpecs(tracked.mirror, changes);
  tracked.client.applyLocal(changes);
}

export async function openTracked(urls: string | string[], token: string, codec: 'json' | 'msgpack' = 'json'): Promise<Tracked> {
  const client = connect(urls, token, { WebSocket: WebSocket as unknown as WebSocketConstructor, codec, minReconnectDelayMs: 50, maxReconnectDelayMs: 500, resendDelayMs: 100 });
  const tracked: Tracked = { client, versions: [], inserted: new Set(), acks: 0, errors: [], resyncs: 0, mirror: '' };
  client.on('change', (change) => {
    tracked.versions.push(change.version);
    tracked.mirror = applySpecs(tracked.mirror, change.localChanges);
  });
  client.on('replaced', ({ text }) => (tracked.mirror = text));
  client.on('ack', ({ version }) => {
    tracked.versions.push(version);
    tracked.acks++;
  });
  client.on('error', (error) => tracked.errors.push(error.code));
  client.on('resync', () => tracked.resyncs++);
  await new Promise<void>((resolve, reject) => {
    const off = client.on('connected', () => {
      off();
      tracked.mirror = client.text;
      resolve();
    });
    client.on('closed', ({ code, reason }) => {
      if (client.state === 'closed') reject(new Error(`closed ${code} ${reason}`));
    });
  });
  return tracked;
}

/**
 * A unique token inserted between two tokens (inserts only, and never inside another token, so
 * every token the client sent must appear whole in the final text).
 */
export function insertToken(text: string, token: string): ChangeSpec[] {
  const boundaries = [0];
  for (let i = 0; i < text.length; i++) if (text[i] === '>') boundaries.push(i + 1);
  const at = boundaries[Math.floor(Math.random() * boundaries.length)];
  return [{ from: at, to: at, insert: token }];
}

/** A random insert, delete or replacement. */
export function randomEdit(text: string, salt: string): ChangeSpec[] {
  const from = Math.floor(Math.random() * (text.length + 1));
  const to = Math.min(text.length, from + (Math.random() < 0.4 ? Math.floor(Math.random() * 4) : 0));
  const insert = Math.random() < 0.8 ? `${salt}${'xyz\n'.slice(0, Math.floor(Math.random() * 4))}` : '';
  return [{ from, to, insert }];
}

/**
 * Every client makes `edits` edits, one every `intervalMs` (jittered). Inserted tokens are
 * `<c{index}e{n}>`; with `insertsOnly` nothing is ever deleted.
 */
export async function storm(clients: Tracked[], edits: number, intervalMs: number, insertsOnly: boolean): Promise<void> {
  await Promise.all(clients.map(async (tracked, index) => {
    for (let n = 0; n < edits; n++) {
      await new Promise((resolve) => setTimeout(resolve, intervalMs * (0.5 + Math.random())));
      if (tracked.client.state === 'closed') return;
      const token = `<c${index}e${n}>`;
      const changes = insertsOnly ? insertToken(tracked.client.text, token) : randomEdit(tracked.client.text, `c${index}.${n};`);
      editLocal(tracked, changes);
      tracked.inserted.add(token);
    }
  }));
}

/** Waits until every client has nothing pending and all are at the same version. */
export async function settle(clients: Tracked[], timeoutMs = 30_000): Promise<number> {
  await waitFor(() => {
    if (!clients.every((tracked) => tracked.client.synced && tracked.client.state === 'open')) return false;
    const version = clients[0].client.version;
    return clients.every((tracked) => tracked.client.version === version);
  }, timeoutMs, `clients to settle (versions ${clients.map((t) => `${t.client.version}${t.client.synced ? '' : '*'}:${t.client.state}`).join(' ')})`);
  return clients[0].client.version;
}

/** Versions the client saw, sorted, must be exactly 1..N once each. */
export function sawEveryVersionOnce(tracked: Tracked, n: number): boolean {
  const sorted = [...tracked.versions].sort((a, b) => a - b);
  return sorted.length === n && sorted.every((version, i) => version === i + 1);
}

/** Every version is one client's acked change: the total of acks is the final version. */
export function totalAcks(clients: Tracked[]): number {
  return clients.reduce((sum, tracked) => sum + tracked.acks, 0);
}
