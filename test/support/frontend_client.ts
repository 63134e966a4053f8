/**
 * A SharePython page over a real WebSocket, loading as CodeSandbox.vue's `mounted` does: its
 * text from the API (`GET codespace/<uuid or token>/`), then, for an owner, a token from
 * `POST codespace/access/token/`, then `new WebSocket(.../codespace/<token>/)` with the token
 * as it is in the path, no subprotocol.
 */
import { WebSocket } from 'ws';
import { FrontendPage, type WireMessage } from './frontend_page.ts';

export interface FrontendClient {
  page: FrontendPage;
  socket: WebSocket;
  /** Everything received, in order. */
  received: WireMessage[];
  /** The mode `connected` gave. */
  mode: string;
  close(): void;
}

/** `apiBase` ends in `/`; `wsBase` is `ws://host:port`. `owner`: opened by uuid, as the owner. */
export async function openFrontend(apiBase: string, wsBase: string, id: string, owner = false): Promise<FrontendClient> {
  const loaded = await fetch(`${apiBase}codespace/${id}/`);
  if (loaded.status !== 200) throw new Error(`API answered ${loaded.status}`);
  const { code } = (await loaded.json()) as { code: string };
  let token = id;
  if (owner) {
    const response = await fetch(`${apiBase}codespace/access/token/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ codespace_uuid: id, expire_time: 120, mode: 'edit' }),
    });
    token = ((await response.json()) as { token: string }).token;
  }
  const socket = new WebSocket(`${wsBase}/codespace/${token}/`, { perMessageDeflate: false });
  const page = new FrontendPage(code, (message) => {
    if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
  });
  const received: WireMessage[] = [];
  const client: FrontendClient = { page, socket, received, mode: '', close: () => socket.close(1000, 'unmounted') };
  await new Promise<void>((resolve, reject) => {
    socket.on('message', function pageOnMessage(data: Buffer) {
      const message = JSON.parse(data.toString('utf8')) as WireMessage;
      received.push(message);
      page.receive(message);
      if (message.operation === 'connected') {
        client.mode = message.data.mode;
        resolve();
      }
    });
    socket.on('close', (code, reason) => reject(new Error(`closed ${code} ${reason.toString()} before connected`)));
    socket.on('error', reject);
  });
  return client;
}
