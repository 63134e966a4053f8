/** GET /codespace/<token>/code: the read-only text route for a SharePython-style API (issue 12). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiStub, type ApiStub, type ApiStubOptions } from './support/sharepython_api.ts';
import { startRedis, type TestRedis } from './support/redis.ts';
import { startTestServer, type TestServer } from './support/server.ts';
import { TestClient } from './support/ws_client.ts';

let server: TestServer;
let api: ApiStub;
let http: string;
const apiOptions: ApiStubOptions = {};

beforeAll(async () => {
  api = await startApiStub(apiOptions);
  server = await startTestServer({ apiBaseUrl: api.base, workers: 1 });
  http = server.url.replace(/^ws:/, 'http:');
  apiOptions.serverHttp = http;
});

afterAll(async () => {
  await server.close();
  await api.close();
});

async function codeOf(token: string): Promise<string> {
  const response = await fetch(`${http}/codespace/${encodeURIComponent(token)}/code`);
  expect(response.status).toBe(200);
  return response.text();
}

describe('GET /codespace/<token>/code', () => {
  it('answers the codespace text for the token, read-only, and nothing for a bad or unknown token', async () => {
    const first = api.createCodespace('route-1');
    const second = api.createCodespace('route-2');
    const { client } = await TestClient.join(`${server.url}/codespace/${first.editToken}/`);
    client.send({ operation: 'insert_value', changes: [{ from: 0, to: 0, insert: 'print(1)\n' }], doc_length: 0 });
    await client.next((m) => m.operation === 'ack');
    expect(await codeOf(first.viewToken)).toBe('print(1)\n');
    expect(await codeOf(second.viewToken)).toBe('');
    expect(await codeOf('tmp-never-used')).toBe('');
    const status = async (path: string, method = 'GET') => (await fetch(`${http}${path}`, { method })).status;
    expect(await status(`/codespace/${encodeURIComponent(first.editToken)}/code`, 'POST')).toBe(405);
    expect(await status('/codespace/no%20spaces/code')).toBe(403);
    expect(await status('/codespace/%E0%A4%A/code')).toBe(403);
    expect(await status(`/codespace/${'a'.repeat(300)}/code`)).toBe(403);
    expect(await status('/codespace/unknown-token/code')).toBe(404);
    expect(await status('/codespace/tmp-x/code/extra')).toBe(404);
    client.close();
  });
});

describe('GET /codespace/<token>/code on Redis', () => {
  let redis: TestRedis;
  let redisServer: TestServer;
  beforeAll(async () => {
    redis = await startRedis();
    redisServer = await startTestServer({ redisUrl: redis.url, workers: 1 });
  });
  afterAll(async () => {
    await redisServer.close();
    await redis.stop();
  });

  it('answers 404: the API reads the hash field code itself', async () => {
    const response = await fetch(`${redisServer.url.replace(/^ws:/, 'http:')}/codespace/tmp-x/code`);
    expect(response.status).toBe(404);
  });
});
