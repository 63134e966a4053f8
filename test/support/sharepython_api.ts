/**
 * A stand-in for the SharePython API (Django), answering the routes the frontend and the server
 * use: `GET codespace/<uuid or token>/` (the page's text, or with `?fields=uuid,mode` the
 * server's token lookup) and `POST codespace/access/token/` (an owner's token). Share tokens are
 * made as SharePython makes them: URL-safe base64 of 80 (edit) or 85 (view_only) random bytes,
 * padding kept. The text is read where the real API would read it: the Redis hash field `code`
 * (`readCode` given), or else the server's read-only route `GET /codespace/<token>/code`.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Mode = 'edit' | 'view_only';

export interface ApiStub {
  /** Base URL, ending in `/`, for API_BASE_URL and the pages. */
  readonly base: string;
  /** Requests as received (method and raw path), for asserts. */
  readonly requests: string[];
  /** A codespace and its two share tokens. */
  createCodespace(uuid: string): { uuid: string; editToken: string; viewToken: string };
  close(): Promise<void>;
}

export interface ApiStubOptions {
  /** Reads `code` itself (the Redis hash). Without it, asks the server at `serverHttp`. */
  readCode?: (uuid: string) => Promise<string>;
  /** `http://127.0.0.1:<port>` of the codespace server. */
  serverHttp?: string;
}

/** Python's `base64.urlsafe_b64encode(os.urandom(bytes))`, as SharePython makes tokens. */
export function sharePythonToken(bytes: number): string {
  return randomBytes(bytes).toString('base64').replaceAll('+', '-').replaceAll('/', '_');
}

export async function startApiStub(options: ApiStubOptions): Promise<ApiStub> {
  const tokens = new Map<string, { uuid: string; mode: Mode }>();
  const codespaces = new Set<string>();
  const requests: string[] = [];

  function mint(uuid: string, mode: Mode): string {
    const token = sharePythonToken(mode === 'edit' ? 80 : 85);
    tokens.set(token, { uuid, mode });
    return token;
  }

  async function codeOf(uuid: string, token: string): Promise<string> {
    if (options.readCode) return options.readCode(uuid);
    const response = await fetch(`${options.serverHttp}/codespace/${encodeURIComponent(token)}/code`);
    if (response.status !== 200) throw new Error(`server answered ${response.status} for the code`);
    return response.text();
  }

  async function route(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://stub');
    requests.push(`${request.method} ${request.url}`);
    const json = (status: number, body: unknown): void => void response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (request.method === 'POST' && url.pathname === '/codespace/access/token/') {
      const body = JSON.parse(await readBody(request)) as { codespace_uuid?: string; mode?: Mode };
      if (!body.codespace_uuid || !codespaces.has(body.codespace_uuid)) return json(404, { detail: 'Not found.' });
      return json(201, { token: mint(body.codespace_uuid, body.mode === 'view_only' ? 'view_only' : 'edit') });
    }
    const match = /^\/codespace\/([^/]+)\/$/.exec(url.pathname);
    if (request.method !== 'GET' || !match) return json(404, { detail: 'Not found.' });
    const id = decodeURIComponent(match[1]);
    // An owner opens by uuid (the real API checks the session cookie); anyone else by token.
    const grant = codespaces.has(id) ? { uuid: id, mode: 'edit' as Mode } : tokens.get(id);
    if (!grant) return json(404, { detail: 'Not found.' });
    if (url.searchParams.get('fields') === 'uuid,mode') return json(200, { uuid: grant.uuid, mode: grant.mode });
    const token = tokens.has(id) ? id : mint(grant.uuid, 'view_only');
    json(200, { uuid: grant.uuid, name: 'codespace', mode: grant.mode, code: await codeOf(grant.uuid, token) });
  }

  const server: Server = createServer((request, response) => {
    route(request, response).catch((error: unknown) => {
      if (!response.headersSent) response.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ detail: String(error) }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}/`,
    requests,
    createCodespace(uuid: string) {
      codespaces.add(uuid);
      return { uuid, editToken: mint(uuid, 'edit'), viewToken: mint(uuid, 'view_only') };
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (body += chunk));
    request.on('end', () => resolve(body));
    request.on('error', reject);
  });
}
