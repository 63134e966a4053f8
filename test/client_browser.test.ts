/**
 * The SDK's browser path: bundled for the browser platform (esbuild fails on any Node built-in),
 * then run in Deno, whose WebSocket is the standard browser one (no `ws`, no options.WebSocket),
 * against a real server, in both codecs.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './support/server.ts';
import { TestClient } from './support/ws_client.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

// Two SDK clients (json and msgpack) with the runtime's own WebSocket: each types, waits for its
// ack, then for the test's edit, and prints what it holds.
const SCRIPT = `
import { connect } from './client.js';
const [base, token] = Deno.args;
async function run(codec) {
  const client = connect(base, token, { codec, clientId: codec });
  await new Promise((resolve) => client.on('connected', resolve));
  const acked = new Promise((resolve) => client.on('ack', resolve));
  client.applyLocal([{ from: 0, to: 0, insert: codec + ' ' }]);
  await acked;
  console.log(JSON.stringify({ codec, acked: true }));
  await new Promise((resolve) => { const check = () => client.text.includes('!') ? resolve() : setTimeout(check, 10); check(); });
  console.log(JSON.stringify({ codec, text: client.text, version: client.version }));
  client.close();
}
await Promise.all([run('json'), run('msgpack')]);
`;

let server: TestServer;
let dir: string;

beforeAll(async () => {
  server = await startTestServer();
  dir = mkdtempSync(join(tmpdir(), 'codespace-sdk-'));
  await build({ entryPoints: [join(ROOT, 'src/client/client.ts')], bundle: true, format: 'esm', platform: 'browser', outfile: join(dir, 'client.js'), logLevel: 'silent' });
  writeFileSync(join(dir, 'run.js'), SCRIPT);
});
afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('CodespaceClient in a browser runtime', () => {
  it('bundles without Node built-ins and syncs over the standard WebSocket in both codecs', async () => {
    const token = 'tmp-sdk-browser';
    const { client: watcher } = await TestClient.join(server.urlFor(token));
    const deno = spawn(join(ROOT, 'node_modules/.bin/deno'), ['run', '--allow-net', '--quiet', join(dir, 'run.js'), server.url, token], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: Record<string, unknown>[] = [];
    let stderr = '';
    deno.stderr.on('data', (chunk) => (stderr += chunk));
    deno.stdout.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) if (line.trim()) lines.push(JSON.parse(line));
    });
    const exited = new Promise<number | null>((resolve) => deno.once('exit', resolve));
    try {
      // Both SDK clients' edits reach the watcher.
      await watcher.next((m) => m.operation === 'insert_value', 20_000);
      await watcher.next((m) => m.operation === 'insert_value', 5_000);
      const inserts = watcher.all((m) => m.operation === 'insert_value');
      expect(inserts.map((m) => m.changes[0].insert).sort()).toEqual(['json ', 'msgpack ']);
      watcher.send({ operation: 'insert_value', changes: [{ from: 0, to: 0, insert: '!' }], version: 2, ref: 'w' });
      expect((await watcher.next((m) => m.operation === 'ack')).version).toBe(3);
      expect(await exited).toBe(0);
    } finally {
      if (deno.exitCode === null) deno.kill();
      watcher.close();
    }
    const finals = lines.filter((line) => 'text' in line);
    expect(finals).toHaveLength(2);
    const { connected } = await TestClient.join(server.urlFor(token));
    for (const final of finals) expect(final).toMatchObject({ text: connected.data.code, version: 3 });
    expect(stderr).toBe('');
  }, 40_000);
});
