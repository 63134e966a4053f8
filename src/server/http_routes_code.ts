/**
 * `GET /codespace/<token>/code`: the codespace's text, read-only, for a SharePython-style API in
 * front of the embedded memory or file store (issue 12). With Redis the API reads the hash field `code`
 * itself (PROTOCOL.md §7); here nothing else can, so the server answers with the same token the
 * WebSocket takes, resolved and checked exactly as at the upgrade, and with nothing but the text.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ProtocolError } from '../protocol/close_codes.ts';
import type { Hub } from './hub.ts';

const CODE_PATH = /^\/codespace\/([^/]+)\/code\/?$/;

/** True when `path` is this route's, whatever the method. */
export function isCodeRoute(path: string): boolean {
  return CODE_PATH.test(path);
}

/** HTTP status for a refusal of the token, from its close code (PROTOCOL.md §5). */
function statusOf(close: number): number {
  if (close === 4404) return 404;
  if (close === 1013) return 503;
  return 403;
}

function answer(response: ServerResponse, status: number, body: string): void {
  if (response.headersSent || response.destroyed) return;
  response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' }).end(body);
}

export async function serveCode(hub: Hub, path: string, request: IncomingMessage, response: ServerResponse): Promise<void> {
  if (request.method !== 'GET') return answer(response, 405, 'method not allowed\n');
  if (hub.backplaneName === 'redis') return answer(response, 404, 'the text is in the store (field code)\n');
  let token: string;
  try {
    token = decodeURIComponent(CODE_PATH.exec(path)![1]);
  } catch {
    return answer(response, 403, 'token refused\n');
  }
  const left = new AbortController();
  response.on('close', function codeRequestOnClose() {
    left.abort();
  });
  try {
    const grant = await hub.resolver.resolve(token, { leftSignal: left.signal });
    // The file store is written before every ack, like the memory one: either holds the text as acked.
    const text = hub.fileStore ? (await hub.fileStore.load(grant.codespace)).text : hub.store.loadNow(grant.codespace).text;
    answer(response, 200, text);
  } catch (error) {
    if (error instanceof ProtocolError) return answer(response, statusOf(error.close.code), `${error.close.reason}\n`);
    answer(response, 500, 'unexpected server error\n');
  }
}
