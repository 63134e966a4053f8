/** /metrics carries the counters that moved, with the right values (Prometheus text format). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './support/server.ts';
import { TestClient, waitFor } from './support/ws_client.ts';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ workers: 2 });
});
afterAll(async () => {
  await server.close();
});

async function scrape(): Promise<{ contentType: string; text: string }> {
  const response = await fetch(`${server.url.replace('ws:', 'http:')}/metrics`);
  expect(response.status).toBe(200);
  return { contentType: response.headers.get('content-type') ?? '', text: await response.text() };
}

/** The value of one sample, e.g. `codespace_messages_in_total{operation="insert_value"}`. */
function sample(text: string, name: string): number {
  const line = text.split('\n').find((candidate) => candidate.startsWith(name + ' '));
  return line === undefined ? Number.NaN : Number(line.slice(name.length + 1));
}

describe('/metrics', () => {
  it('counts messages, acks, errors, closes, commits and fan-outs as they happen', async () => {
    const { client: a } = await TestClient.join(server.urlFor('tmp-metrics'));
    const { client: b } = await TestClient.join(server.urlFor('tmp-metrics'), 'msgpack');
    for (let v = 1; v <= 5; v++) {
      a.send({ operation: 'insert_value', changes: [{ from: 0, to: 0, insert: 'x' }], version: v - 1, ref: `m${v}` });
      await a.next((m) => m.operation === 'ack');
    }
    a.send({ operation: 'create_selection', selections: [{ anchor: 0, head: 1 }] });
    await b.next((m) => m.operation === 'create_selection');
    a.send({ operation: 'insert_value', changes: 'nope' });
    await a.next((m) => m.operation === 'error');
    const { client: bad } = await TestClient.join(server.urlFor('tmp-metrics'));
    bad.sendRaw('not json', false);
    expect((await bad.closedWith()).code).toBe(4400);

    // Channels report with their heartbeat answers: wait for the acks to show.
    let text = '';
    const deadline = Date.now() + 5000;
    do {
      text = (await scrape()).text;
      if (sample(text, 'codespace_messages_out_total{operation="ack"}') === 5) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    } while (Date.now() < deadline);

    expect(sample(text, 'codespace_messages_in_total{operation="insert_value"}')).toBe(5);
    expect(sample(text, 'codespace_messages_in_total{operation="create_selection"}')).toBe(1);
    expect(sample(text, 'codespace_messages_out_total{operation="ack"}')).toBe(5);
    // b received five changes; nobody else was there to get them.
    expect(sample(text, 'codespace_messages_out_total{operation="insert_value"}')).toBe(5);
    expect(sample(text, 'codespace_errors_total{code="malformed"}')).toBe(1);
    expect(sample(text, 'codespace_closes_total{code="4400"}')).toBe(1);
    expect(sample(text, 'codespace_commit_seconds_count')).toBe(5);
    expect(sample(text, 'codespace_fanout_seconds_count')).toBe(5);
    expect(sample(text, 'codespace_connections')).toBe(2);
    expect(sample(text, 'codespace_codespaces')).toBe(1);
    expect(sample(text, 'codespace_backplane_up')).toBe(1);
    expect(text).toMatch(/codespace_channels\{thread="\d+"\} 1/);
    expect(text).toMatch(/codespace_event_loop_lag_seconds\{thread="0"\} /);
    expect(text).toMatch(/codespace_event_loop_lag_seconds\{thread="[1-9]\d*"\} /);
    expect(text).toContain('codespace_process_resident_memory_bytes');
    a.close();
    b.close();
  });

  it('counts a channel restart', async () => {
    const { client } = await TestClient.join(server.urlFor('tmp-metrics-restart'));
    const ref = server.hub.supervisor.channel('tmp-metrics-restart')!;
    await waitFor(() => ref.thread > 0, 3000, 'channel ready');
    const before = sample((await scrape()).text, 'codespace_channel_restarts_total');
    server.hub.placement.terminateThread(ref.thread);
    await client.next((m) => m.operation === 'resync');
    expect(sample((await scrape()).text, 'codespace_channel_restarts_total')).toBe(before + 1);
    client.close();
  });
});
