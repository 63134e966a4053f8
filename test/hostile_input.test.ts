/**
 * Issue 11, each finding as a test that failed on the code before it: a request line, nested
 * data, a msgpack uint64, refs of another client, simultaneous joins, a resync, a drain. After
 * each, the process serves and nothing acknowledged is lost.
 */
import { connect as connectTcp } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Packr } from 'msgpackr';
import { linkFaults } from '../src/actors/port_link.ts';
import { TestClient, waitFor, type Message } from './support/ws_client.ts';
import { startTestServer, type TestServer } from './support/server.ts';

let server: TestServer;
const open: TestClient[] = [];

beforeAll(async () => {
  server = await startTestServer({ faultInjection: true });
});
afterEach(() => {
  for (const client of open.splice(0)) client.close();
});
afterAll(async () => {
  await server.close();
});

async function join(token: string, query = '', codec: 'json' | 'msgpack' | 'none' = 'none'): Promise<{ client: TestClient; connected: Message }> {
  const joined = await TestClient.join(server.urlFor(token, query), codec);
  open.push(joined.client);
  return joined;
}

/** Sends raw bytes on a fresh TCP connection and returns what came back before the server closed it. */
function rawRequest(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connectTcp(port, '127.0.0.1');
    let answer = '';
    socket.setTimeout(5_000, () => socket.destroy(new Error(`no answer to ${JSON.stringify(request.slice(0, 40))}`)));
    socket.on('data', (chunk) => (answer += chunk.toString('latin1')));
    socket.on('error', reject);
    socket.on('close', () => resolve(answer));
    socket.write(request);
  });
}

function upgradeLine(target: string): string {
  return `GET ${target} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`;
}

async function editAck(client: TestClient, version: number, insert: string, ref: string): Promise<Message> {
  client.send({ operation: 'insert_value', changes: [{ from: 0, to: 0, insert }], version, ref });
  return client.next((m) => (m.operation === 'ack' || m.operation === 'error') && (m.ref === ref || m.data?.ref === ref));
}

describe('a request line or query cannot stop the process', () => {
  it('answers 400 to targets new URL() cannot parse, at the upgrade and the plain routes, and keeps serving', async () => {
    for (const target of ['//[', '//[::1', 'http://[/x', '*', '/codespace/a b/']) {
      const upgrade = await rawRequest(server.port, upgradeLine(target));
      expect(upgrade, target).toMatch(/^HTTP\/1\.1 (400|404)/);
      const plain = await rawRequest(server.port, `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      expect(plain, target).toMatch(/^HTTP\/1\.1 (400|404)/);
    }
    const { connected } = await join('tmp-after-bad-lines');
    expect(connected.operation).toBe('connected');
  });

  it('closes with 4400 after the upgrade on a malformed version, epoch or client key', async () => {
    for (const query of ['version=-1', 'version=1e3', 'epoch=' + 'x'.repeat(65), 'client=short', 'client=' + 'a'.repeat(16) + '!', 'version=1&version=2', 'client=%zz']) {
      const client = await TestClient.open(server.urlFor('tmp-bad-params', query));
      open.push(client);
      expect((await client.closedWith()).code, query).toBe(4400);
    }
  });
});

describe('nested data and huge numbers cost their sender only', () => {
  const deep = (levels: number): unknown => {
    let value: unknown = 1;
    for (let i = 0; i < levels; i++) value = [value];
    return value;
  };

  it('refuses a create_selection with a nested field (1,500 levels), a view_only sender included; the process and channel live', async () => {
    const { client: watcher } = await join('tmp-nested');
    const { client: sender } = await join('tmp-nested');
    sender.send({ operation: 'create_selection', selections: [{ anchor: 0, head: 0 }], name: deep(1500) });
    expect((await sender.next((m) => m.operation === 'error')).data.code).toBe('malformed');
    sender.send({ operation: 'create_selection', selections: [{ anchor: 0, head: 0, nested: deep(1500) }], name: 'ok' });
    const relayed = await watcher.next((m) => m.operation === 'create_selection');
    expect(relayed).toEqual({ operation: 'create_selection', selections: [{ anchor: 0, head: 0 }], name: 'ok', sender: sender.messages[0].data.id, version: 0 });
    expect(await editAck(sender, 0, 'x', 'n1')).toMatchObject({ operation: 'ack', version: 1 });
    expect(linkFaults.dropped).toBe(0);
  });

  it('drops extra fields nested inside a change, and commits the change', async () => {
    const { client } = await join('tmp-nested-change');
    client.send({ operation: 'insert_value', changes: [{ from: 0, to: 0, insert: 'a', extra: deep(1500) }], version: 0, ref: 'c1' });
    expect(await client.next((m) => m.operation === 'ack' || m.operation === 'error')).toMatchObject({ operation: 'ack', version: 1 });
  });

  it('refuses integers beyond 2^53 from msgpack (uint64) as malformed; the codespace keeps working, nobody gets 4500', async () => {
    const bigPackr = new Packr({ useRecords: false, largeBigIntToFloat: false });
    const { client: watcher } = await join('tmp-bigint', '', 'msgpack');
    const { client: sender } = await join('tmp-bigint', '', 'msgpack');
    for (let i = 0; i < 8; i++) {
      sender.sendRaw(Buffer.from(bigPackr.pack({ operation: 'create_selection', selections: [{ anchor: 2n ** 63n, head: 0 }] })), true);
      sender.sendRaw(Buffer.from(bigPackr.pack({ operation: 'create_selection', selections: [], n: 2n ** 64n - 1n })), true);
    }
    await waitFor(() => sender.all((m) => m.operation === 'error').length === 16, 10_000, '16 refusals');
    expect(sender.all((m) => m.operation === 'error').every((m) => m.data.code === 'malformed')).toBe(true);
    expect(await editAck(sender, 0, 'still', 'b1')).toMatchObject({ operation: 'ack', version: 1 });
    expect(watcher.all((m) => m.operation === 'create_selection')).toEqual([]);
    expect(watcher.closed).toBeNull();
  });

  it('refuses more than 16 scalar fields, long strings and more than 100 ranges', async () => {
    const { client } = await join('tmp-selection-limits');
    const many = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`f${i}`, i]));
    for (const message of [
      { operation: 'create_selection', selections: [], ...many },
      { operation: 'create_selection', selections: [], name: 'x'.repeat(257) },
      { operation: 'create_selection', selections: Array.from({ length: 101 }, () => ({ anchor: 0, head: 0 })) },
    ]) {
      client.send(message);
      expect((await client.next((m) => m.operation === 'error')).data.code).toBe('malformed');
    }
  });
});

describe('deduplication belongs to the author (PROTOCOL.md §1-2)', () => {
  it('another client committing empty edits under a victim\'s next refs does not get the victim\'s edits dropped', async () => {
    const { client: victim } = await join('tmp-refs', 'client=victim-key-0123456789');
    const { client: attacker } = await join('tmp-refs', 'client=attacker-key-0123456789');
    for (let i = 1; i <= 3; i++) {
      attacker.send({ operation: 'insert_value', changes: [], version: i - 1, ref: `v-${i}` });
      await attacker.next((m) => m.operation === 'ack' && m.ref === `v-${i}`);
    }
    const ack = await editAck(victim, 3, 'real', 'v-1');
    expect(ack).toMatchObject({ operation: 'ack', version: 4 });
    const { connected } = await join('tmp-refs');
    expect(connected.data.code).toBe('real');
  });

  it('a resend with the same client key after a reconnect is acked with its first version, not applied twice', async () => {
    const key = 'client=same-key-abcdefghijklmnop';
    const first = await join('tmp-resend', key);
    expect(await editAck(first.client, 0, 'once', 'r1')).toMatchObject({ operation: 'ack', version: 1 });
    first.client.close();
    const second = await join('tmp-resend', key);
    expect(await editAck(second.client, 0, 'once', 'r1')).toMatchObject({ operation: 'ack', version: 1 });
    const other = await join('tmp-resend', 'client=other-key-abcdefghijklm');
    expect(await editAck(other.client, 1, 'twice', 'r1')).toMatchObject({ operation: 'ack', version: 2 });
    expect((await join('tmp-resend')).connected.data.code).toBe('twiceonce');
  });

  it('never sends the client key to anyone', async () => {
    const { client: watcher } = await join('tmp-key-secret');
    const { client } = await join('tmp-key-secret', 'client=secret-key-never-shown-1');
    await editAck(client, 0, 'a', 'k1');
    await watcher.next((m) => m.operation === 'insert_value');
    expect(JSON.stringify(watcher.messages)).not.toContain('secret-key');
    expect(JSON.stringify(server.logs)).not.toContain('secret-key');
  });
});

describe('joins and restarts', () => {
  it('connected is the first message of every join, with 3 clients joining each of 20 codespaces at once', async () => {
    const joins: Promise<TestClient>[] = [];
    for (let c = 0; c < 20; c++) for (let k = 0; k < 3; k++) joins.push(TestClient.open(server.urlFor(`tmp-burst-${c}`)));
    const clients = await Promise.all(joins);
    open.push(...clients);
    await Promise.all(clients.map((client) => client.next((m) => m.operation === 'connected')));
    await Promise.all(clients.map((client, i) => i % 3 === 0 ? client.next((m) => m.operation === 'peer_joined') : Promise.resolve()));
    for (const client of clients) expect(client.messages[0].operation).toBe('connected');
  });

  it('after a resync, members get no peer_joined for peers they already know', async () => {
    const { client: a } = await join('tmp-resync-peers');
    const { client: b } = await join('tmp-resync-peers');
    await a.next((m) => m.operation === 'peer_joined');
    a.send({ operation: '__fault', kind: 'throw' });
    await a.next((m) => m.operation === 'resync');
    await b.next((m) => m.operation === 'resync');
    expect(await editAck(a, 0, 'after', 'p1')).toMatchObject({ operation: 'ack' });
    await b.next((m) => m.operation === 'insert_value');
    expect(a.all((m) => m.operation === 'peer_joined')).toHaveLength(1);
    expect(b.all((m) => m.operation === 'peer_joined')).toHaveLength(0);
  });

  it('logs a crash with its error message and the top of its stack', async () => {
    const { client } = await join('tmp-crash-log');
    client.send({ operation: '__fault', kind: 'throw' });
    await client.next((m) => m.operation === 'resync');
    const crashed = server.logs.find((entry) => entry.event === 'channel_crashed' && entry.fields.codespace === 'tmp-crash-log');
    expect(String(crashed?.fields.why)).toMatch(/injected fault: throw @ .*channel/);
  });

  it('restarts a codespace that crashed in the quarantine worker, and a hang there stalls none of the others', async () => {
    const { client: bystander } = await join('tmp-q-bystander');
    const { client: culprit } = await join('tmp-q-culprit');
    const pool = server.hub.supervisor.channel('tmp-q-bystander')!.thread;
    culprit.send({ operation: '__fault', kind: 'throw' });
    await culprit.next((m) => m.operation === 'resync');
    const ref = server.hub.supervisor.channel('tmp-q-culprit')!;
    expect(ref.quarantined).toBe(true);
    await waitFor(() => ref.state === 'ready', 10_000, 'the culprit ready again');
    expect(ref.thread).not.toBe(pool);
    culprit.send({ operation: '__fault', kind: 'hang' });
    await culprit.next((m) => m.operation === 'resync', 20_000);
    expect(await editAck(bystander, 0, 'fine', 'q1')).toMatchObject({ operation: 'ack', version: 1 });
    expect(bystander.all((m) => m.operation === 'resync')).toEqual([]);
    const hung = server.logs.find((entry) => entry.event === 'worker_hung');
    expect(hung?.fields.hung).toEqual(['tmp-q-culprit']);
  });
});

describe('draining', () => {
  it('answers /readyz and new upgrades with 503 while it drains, rather than refusing connections', async () => {
    const draining = await startTestServer({});
    const { client } = await TestClient.join(draining.urlFor('tmp-drain'));
    const drained = draining.acceptor.drain(3_000);
    const ready = await fetch(`http://127.0.0.1:${draining.port}/readyz`);
    expect(ready.status).toBe(503);
    await expect(TestClient.open(draining.urlFor('tmp-drain'))).rejects.toThrow('HTTP 503');
    expect((await client.closedWith()).code).toBe(1001);
    await drained;
  });
});
