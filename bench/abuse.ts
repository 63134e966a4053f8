/**
 * What one abusive codespace can take (issue 11, finding 5): anonymous tmp- editors, each
 * replacing about a megabyte per edit as fast as its acks come back, for a bounded time and
 * count, while a bystander codespace edits beside them. Measured: the server's peak RSS (with
 * its workers, from /proc), edits acked and refused, and what the bystander noticed.
 */
import WebSocket from 'ws';
import { treeRssBytes, type ServerProcess } from './procs.ts';

export interface AbuseResult {
  abusers: number;
  seconds: number;
  editBytes: number;
  acked: number;
  refused: Record<string, number>;
  /** How the abusers' connections ended before the run did, by close code. */
  abuserCloses: Record<string, number>;
  peakRssMb: number;
  idleRssMb: number;
  bystander: { acked: number; resyncs: number; errors: number; closed: number | null; worstAckMs: number };
}

interface Editor {
  socket: WebSocket;
  version: number;
  length: number;
  inFlight: number | null;
}

function openEditor(url: string, onMessage: (editor: Editor, message: any) => void): Promise<Editor> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    const editor: Editor = { socket, version: 0, length: 0, inFlight: null };
    socket.on('error', reject);
    socket.on('message', (data) => {
      const message = JSON.parse(String(data));
      if (message.operation === 'connected' || message.operation === 'resync') {
        editor.version = message.data.version;
        editor.length = message.data.code.length;
        if (message.operation === 'connected') resolve(editor);
      }
      onMessage(editor, message);
    });
  });
}

export async function abuse(server: ServerProcess, options: { abusers: number; seconds: number; editBytes: number; maxEdits: number }): Promise<AbuseResult> {
  const base = `ws://127.0.0.1:${server.port}/codespace/`;
  const idleRssMb = treeRssBytes(server.pid) / 2 ** 20;
  const refused: Record<string, number> = {};
  let acked = 0;
  let sent = 0;
  let stopping = false;
  const payload = 'x'.repeat(options.editBytes - 1) + '\n';
  function sendReplacement(editor: Editor): void {
    if (stopping || sent >= options.maxEdits || editor.socket.readyState !== WebSocket.OPEN) return;
    sent++;
    editor.inFlight = editor.version;
    editor.socket.send(JSON.stringify({ operation: 'insert_value', changes: [{ from: 0, to: editor.length, insert: payload }], version: editor.version, ref: `a${sent}` }));
  }
  const abusers = await Promise.all(Array.from({ length: options.abusers }, (_, i) => openEditor(`${base}tmp-abuse-${Date.now()}-${i}/`, (editor, message) => {
    if (message.operation === 'ack') {
      acked++;
      editor.version = message.version;
      editor.length = payload.length;
      sendReplacement(editor);
    } else if (message.operation === 'error') {
      refused[message.data.code] = (refused[message.data.code] ?? 0) + 1;
      setTimeout(() => sendReplacement(editor), 100);
    } else if (message.operation === 'resync') {
      setTimeout(() => sendReplacement(editor), 100);
    }
  })));
  const bystander = { acked: 0, resyncs: 0, errors: 0, closed: null as number | null, worstAckMs: 0 };
  let sentAt = 0;
  const watcher = await openEditor(`${base}tmp-abuse-bystander-${Date.now()}/`, (editor, message) => {
    if (message.operation === 'ack') {
      bystander.acked++;
      bystander.worstAckMs = Math.max(bystander.worstAckMs, Date.now() - sentAt);
      editor.version = message.version;
      editor.length++;
    } else if (message.operation === 'resync') bystander.resyncs++;
    else if (message.operation === 'error') bystander.errors++;
  });
  watcher.socket.on('close', (code) => {
    if (!stopping) bystander.closed = code;
  });
  const abuserCloses: Record<string, number> = {};
  for (const editor of abusers) {
    editor.socket.on('close', (code) => {
      if (!stopping) abuserCloses[code] = (abuserCloses[code] ?? 0) + 1;
    });
    sendReplacement(editor);
  }
  let peak = idleRssMb;
  const deadline = Date.now() + options.seconds * 1000;
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    peak = Math.max(peak, treeRssBytes(server.pid) / 2 ** 20);
    sentAt = Date.now();
    watcher.socket.send(JSON.stringify({ operation: 'insert_value', changes: [{ from: watcher.length, to: watcher.length, insert: 'b' }], version: watcher.version, ref: `b${sentAt}` }));
  }
  stopping = true;
  for (const editor of [...abusers, watcher]) editor.socket.close();
  return { abusers: options.abusers, seconds: options.seconds, editBytes: options.editBytes, acked, refused, abuserCloses, peakRssMb: Math.round(peak), idleRssMb: Math.round(idleRssMb), bystander };
}

export function summariseAbuse(result: AbuseResult): string[] {
  return [
    `## One abusive codespace (default settings, memory backplane): ${result.abusers} tmp- editors replacing ${Math.round(result.editBytes / 1024)} KiB per edit for ${result.seconds} s`,
    '',
    `- server RSS with its workers: ${result.idleRssMb} MiB before, ${result.peakRssMb} MiB at the peak; ${result.acked} replacements acked, refused: ${JSON.stringify(result.refused)}, abusers closed: ${JSON.stringify(result.abuserCloses)}`,
    `- the bystander codespace: ${result.bystander.acked} edits acked (worst ack ${result.bystander.worstAckMs} ms), ${result.bystander.resyncs} resyncs, ${result.bystander.errors} errors, ${result.bystander.closed === null ? 'never closed' : `closed ${result.bystander.closed}`}`,
    '',
  ];
}
