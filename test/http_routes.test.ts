/**
 * The pages over HTTP (src/server/http_routes.ts), against a real server: content types, caching,
 * the content security policy, the status page's access rules and cookie, its event stream, and
 * the fault buttons' endpoint. Requests of any shape are answered and never stop the server.
 */
import { request as httpRequest, type ClientRequest } from 'node:http';
import { connect as netConnect } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { acceptsGzip, parseFaultBody, parseRequestTarget, statusFeedOf } from '../src/server/http_routes.ts';
import { MAX_SUBSCRIBERS, statusIdOf } from '../src/server/status_feed.ts';
import type { StatusHello, StatusSample } from '../src/server/status_types.ts';
import { httpGet, readEvents } from './support/http.ts';
import { startTestServer, type TestServer } from './support/server.ts';
import { TestClient, waitFor } from './support/ws_client.ts';

const TOKEN = 'status-token-for-the-route-tests';
let server: TestServer | null = null;
const clients: TestClient[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await server?.close();
  server = null;
});

function assetsOf(html: string): string[] {
  return [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((match) => match[1]);
}

describe('the demo page and its assets', () => {
  it('serves / as HTML with a content security policy whose style nonce changes per response', async () => {
    server = await startTestServer();
    const first = await httpGet(server.port, '/');
    expect(first.status).toBe(200);
    expect(first.headers['content-type']).toBe('text/html; charset=utf-8');
    const csp = String(first.headers['content-security-policy']);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    const nonce = /'nonce-([^']+)'/.exec(csp)?.[1];
    expect(nonce).toBeTruthy();
    expect(first.body.toString()).toContain(`<meta name="csp-nonce" content="${nonce}">`);
    expect(first.headers['cache-control']).toBe('no-store');
    expect(first.headers['x-content-type-options']).toBe('nosniff');
    const second = await httpGet(server.port, '/');
    expect(second.headers['content-security-policy']).not.toBe(csp);
    expect(first.body.toString()).not.toMatch(/https?:\/\/(?!www\.w3\.org)/);
  });

  it('serves the hashed assets with their types, cached for good, gzipped when asked', async () => {
    server = await startTestServer();
    const html = (await httpGet(server.port, '/')).body.toString();
    const assets = assetsOf(html);
    expect(assets.some((path) => path.endsWith('.js'))).toBe(true);
    expect(assets.some((path) => path.endsWith('.css'))).toBe(true);
    for (const path of assets) {
      const plain = await httpGet(server.port, path);
      expect(plain.status).toBe(200);
      expect(plain.headers['content-type']).toBe(path.endsWith('.js') ? 'text/javascript; charset=utf-8' : 'text/css; charset=utf-8');
      expect(plain.headers['cache-control']).toBe('public, max-age=31536000, immutable');
      expect(plain.headers['content-encoding']).toBeUndefined();
      const zipped = await httpGet(server.port, path, { headers: { 'accept-encoding': 'br, gzip;q=0.8' } });
      expect(zipped.headers['content-encoding']).toBe('gzip');
      expect(gunzipSync(zipped.body).equals(plain.body)).toBe(true);
      const again = await httpGet(server.port, path, { headers: { 'if-none-match': String(plain.headers.etag) } });
      expect(again.status).toBe(304);
      const head = await httpGet(server.port, path, { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(head.body.length).toBe(0);
    }
    // The editor bundle holds CodeMirror itself: nothing comes from a CDN.
    const script = (await httpGet(server.port, assets.find((path) => path.endsWith('.js'))!)).body.toString();
    expect(script).toContain('cm-editor');
  });

  it('answers unknown assets, other methods and odd request targets without stopping', async () => {
    server = await startTestServer();
    expect((await httpGet(server.port, '/assets/nope.js')).status).toBe(404);
    expect((await httpGet(server.port, '/assets/../package.json')).status).toBe(404);
    expect((await httpGet(server.port, '/assets/%2e%2e%2fpackage.json')).status).toBe(404);
    expect((await httpGet(server.port, '/', { method: 'POST', body: 'x' })).status).toBe(405);
    expect((await httpGet(server.port, '/?%zz=%&&==')).status).toBe(200);
    expect((await httpGet(server.port, '/healthz')).status).toBe(200);
    // A request line no browser sends: absolute form and `*`.
    for (const line of ['GET http://example.com/status HTTP/1.1', 'OPTIONS * HTTP/1.1', 'GET /status?token=%ff%fe HTTP/1.1']) {
      const answer = await new Promise<string>((resolve) => {
        const socket = netConnect(server!.port, '127.0.0.1', () => socket.end(`${line}\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`));
        let text = '';
        socket.on('data', (chunk) => (text += chunk));
        socket.on('close', () => resolve(text));
        socket.on('error', () => resolve(text));
      });
      expect(answer).toMatch(/^HTTP\/1\.1 \d{3}/);
    }
    expect((await httpGet(server.port, '/healthz')).status).toBe(200);
  });

  it('parses what it is sent at the boundary', () => {
    expect(parseRequestTarget('GET', '/status?token=a&token=b')).toMatchObject({ path: '/status' });
    expect(parseRequestTarget('GET', '/status?token=a').query.get('token')).toBe('a');
    expect(parseRequestTarget(undefined, 'http://x/status').path).not.toBe('/status');
    expect(parseRequestTarget('GET', '*').path).not.toBe('/');
    expect(acceptsGzip('gzip, deflate')).toBe(true);
    expect(acceptsGzip('gzip;q=0')).toBe(false);
    expect(acceptsGzip('br')).toBe(false);
    expect(acceptsGzip(undefined)).toBe(false);
    expect(parseFaultBody('{"channel":"0123abcd","kind":"throw"}')).toEqual({ channel: '0123abcd', kind: 'throw' });
    for (const body of ['', 'null', '[]', '{"channel":"0123abcd","kind":"oom"}', '{"channel":"tmp-x","kind":"hang"}', '{"channel":1,"kind":"hang"}', '{']) expect(parseFaultBody(body)).toBeNull();
  });
});

describe('the status page', () => {
  it('streams a hello and then a sample a second that name channels by hash, never by id', async () => {
    server = await startTestServer();
    const token = 'tmp-status-stream-secret';
    const { client } = await TestClient.join(server.urlFor(token));
    clients.push(client);
    const page = await httpGet(server.port, '/status');
    expect(page.status).toBe(200);
    expect(page.headers['content-security-policy']).toContain("connect-src 'self'");
    const stream = await readEvents(server.port, '/status/events', {}, (events) => events.filter((event) => event.event === 'message').length >= 2);
    expect(stream.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(stream.events[0].event).toBe('hello');
    const hello = JSON.parse(stream.events[0].data) as StatusHello;
    expect(hello.faultInjection).toBe(false);
    expect(hello.pid).toBe(process.pid);
    const sample = JSON.parse(stream.events.at(-1)!.data) as StatusSample;
    expect(sample.connections).toBe(1);
    expect(sample.channels).toBe(1);
    const channels = sample.workers.flatMap((worker) => worker.channels);
    expect(channels).toMatchObject([{ id: statusIdOf(token), kind: 'tmp', members: 1, restarts: 0 }]);
    expect(sample.workers.filter((worker) => worker.thread > 0)).toHaveLength(2);
    for (const event of stream.events) expect(event.data).not.toContain('status-stream-secret');
  });

  it('with STATUS_TOKEN: the token once sets an HttpOnly SameSite=Strict cookie, which the stream then needs', async () => {
    server = await startTestServer({ statusToken: TOKEN });
    expect((await httpGet(server.port, '/status/events')).status).toBe(403);
    expect((await httpGet(server.port, '/status?token=wrong-token-wrong-token')).status).toBe(403);
    const granted = await httpGet(server.port, `/status?token=${TOKEN}`);
    expect(granted.status).toBe(303);
    expect(granted.headers.location).toBe('/status');
    const cookie = String(granted.headers['set-cookie']);
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    expect(cookie).not.toContain(TOKEN);
    const pair = cookie.split(';')[0];
    const stream = await readEvents(server.port, '/status/events', { cookie: pair }, (events) => events.some((event) => event.event === 'message'));
    expect(stream.status).toBe(200);
    expect((await httpGet(server.port, '/status/events', { headers: { cookie: 'codespace_status=forged' } })).status).toBe(403);
  });

  it('serves at most MAX_SUBSCRIBERS event streams at once', async () => {
    server = await startTestServer();
    const open: ClientRequest[] = [];
    try {
      for (let i = 0; i < MAX_SUBSCRIBERS; i++) {
        const status = await new Promise<number>((resolve, reject) => {
          const request = httpRequest({ host: '127.0.0.1', port: server!.port, path: '/status/events' }, (response) => resolve(response.statusCode ?? 0));
          request.on('error', reject);
          request.end();
          open.push(request);
        });
        expect(status).toBe(200);
      }
      expect((await httpGet(server.port, '/status/events')).status).toBe(503);
      expect(statusFeedOf(server.hub).subscribers).toBe(MAX_SUBSCRIBERS);
    } finally {
      for (const request of open) request.destroy();
    }
    await waitFor(() => statusFeedOf(server!.hub).subscribers === 0, 10_000, 'the streams closed');
  });

  it('on a loopback HOST refuses a Host header that is not loopback (DNS rebinding)', async () => {
    server = await startTestServer();
    expect((await httpGet(server.port, '/status/events', { headers: { host: 'attacker.example:80' } })).status).toBe(403);
    expect((await httpGet(server.port, '/status', { headers: { host: `localhost:${server.port}` } })).status).toBe(200);
  });
});

describe('the fault buttons (POST /status/fault)', () => {
  it('are off without FAULT_INJECTION', async () => {
    server = await startTestServer();
    const answer = await httpGet(server.port, '/status/fault', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"channel":"0123abcd","kind":"throw"}' });
    expect(answer.status).toBe(404);
  });

  it('refuse what a browser of another site could send, and make one channel throw', async () => {
    // A throw needs no hang detection: a long timeout keeps a loaded machine from replacing a worker.
    server = await startTestServer({ faultInjection: true, heartbeatIntervalMs: 100, heartbeatTimeoutMs: 5000 });
    const target = 'tmp-fault-route-a';
    const bystander = 'tmp-fault-route-b';
    for (const token of [target, bystander]) clients.push((await TestClient.join(server.urlFor(token))).client);
    await waitFor(() => [target, bystander].every((token) => server!.hub.supervisor.channel(token)?.state === 'ready'), 30_000, 'channels ready');
    const post = (body: string, headers: Record<string, string> = {}) => httpGet(server!.port, '/status/fault', { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
    const good = JSON.stringify({ channel: statusIdOf(target), kind: 'throw' });
    expect((await httpGet(server.port, '/status/fault')).status).toBe(405);
    expect((await post(good, { 'content-type': 'text/plain' })).status).toBe(415);
    expect((await post(good, { origin: 'http://attacker.example' })).status).toBe(403);
    expect((await post(good, { 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    expect((await post('{"channel":"nothex!!","kind":"throw"}')).status).toBe(400);
    expect((await post('x'.repeat(5000))).status).toBe(413);
    expect((await post(JSON.stringify({ channel: '00000000', kind: 'throw' }))).status).toBe(404);
    expect(server.hub.supervisor.counts.restarts).toBe(0);
    expect((await post(good, { origin: `http://127.0.0.1:${server.port}`, 'sec-fetch-site': 'same-origin' })).status).toBe(202);
    await waitFor(() => server!.hub.supervisor.channel(target)?.restarts === 1, 30_000, 'the faulted channel restarted');
    expect(server.hub.supervisor.channel(bystander)?.restarts).toBe(0);
    expect(server.logs.some((line) => line.event === 'fault_injected' && line.fields.codespace === target)).toBe(true);
  });
});
