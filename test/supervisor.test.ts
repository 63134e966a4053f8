/** Supervision: a dead worker's channels restart elsewhere; their clients get `resync`. */
import { afterEach, describe, expect, it } from 'vitest';
import { TestClient, waitFor } from './support/ws_client.ts';
import { startTestServer, type TestServer } from './support/server.ts';

let server: TestServer | null = null;

afterEach(async () => {
  await server?.close();
  server = null;
});

async function edit(client: TestClient, version: number, insert: string, ref: string): Promise<number> {
  client.send({ operation: 'insert_value', changes: [{ from: 0, to: 0, insert }], version, ref });
  return (await client.next((m) => m.operation === 'ack' && m.ref === ref)).version;
}

describe('Supervisor', () => {
  it('spawns one channel for a burst of simultaneous joiners', async () => {
    server = await startTestServer();
    const joins = await Promise.all(Array.from({ length: 20 }, () => TestClient.join(server!.urlFor('tmp-burst'))));
    const versions = new Set(joins.map((j) => j.connected.data.version));
    expect(versions).toEqual(new Set([0]));
    expect(server.hub.supervisor.channelCount).toBe(1);
    expect(server.hub.supervisor.channel('tmp-burst')?.size).toBe(20);
    for (const { client } of joins) client.close();
  });

  it('the channels of a worker share one thread link; a dead worker\'s goes with it', async () => {
    server = await startTestServer({ workers: 2 });
    const joins = await Promise.all(Array.from({ length: 20 }, (_, i) => TestClient.join(server!.urlFor(`tmp-link-${i}`))));
    const refs = joins.map((_, i) => server!.hub.supervisor.channel(`tmp-link-${i}`)!);
    await waitFor(() => refs.every((ref) => ref.thread > 0), 5000, 'channels ready');
    expect(new Set(refs.map((ref) => ref.thread)).size).toBe(2);
    expect(server.hub.supervisor.threadLinkCount).toBe(2);
    // Every channel answers through it, in order.
    for (const [i, { client }] of joins.entries()) expect(await edit(client, 0, `x${i}`, `l${i}`)).toBe(1);

    const dead = refs[0].thread;
    expect(server.hub.placement.terminateThread(dead)).toBe(true);
    const moved = joins.filter((_, i) => refs[i].thread === dead || refs[i].thread === -1);
    for (const { client } of moved) await client.next((m) => m.operation === 'resync');
    await waitFor(() => refs.every((ref) => ref.state === 'ready' && ref.thread > 0 && ref.thread !== dead), 5000, 'channels restarted');
    // The moved channels went to the worker that lived, or to the dead one's replacement.
    const threads = new Set(refs.map((ref) => ref.thread));
    await waitFor(() => server!.hub.supervisor.threadLinkCount === threads.size, 5000, 'the dead worker\'s link closed');
    for (const [i, { client }] of joins.entries()) expect(await edit(client, 1, `y${i}`, `m${i}`)).toBe(2);
    for (const { client } of joins) client.close();
  });

  it('restarts the channels of a dead worker; their clients get resync, others notice nothing', async () => {
    server = await startTestServer({ workers: 2 });
    const { client: a } = await TestClient.join(server.urlFor('tmp-crash-a'));
    const { client: b } = await TestClient.join(server.urlFor('tmp-crash-a'), 'msgpack');
    const { client: other } = await TestClient.join(server.urlFor('tmp-crash-b'));
    const refA = server.hub.supervisor.channel('tmp-crash-a')!;
    const refB = server.hub.supervisor.channel('tmp-crash-b')!;
    await waitFor(() => refA.thread > 0 && refB.thread > 0, 2000, 'channels ready');
    // The balancer spreads channels: the two codespaces live on different workers.
    expect(refA.thread).not.toBe(refB.thread);
    expect(await edit(a, 0, 'one ', 'a1')).toBe(1);
    await b.next((m) => m.operation === 'insert_value');

    expect(server.hub.placement.terminateThread(refA.thread)).toBe(true);
    const resyncA = await a.next((m) => m.operation === 'resync');
    const resyncB = await b.next((m) => m.operation === 'resync');
    for (const resync of [resyncA, resyncB]) expect(resync.data).toMatchObject({ version: 1, code: 'one ', codespace: 'tmp-crash-a' });
    expect(resyncA.data.id).toBe(a.messages[0].data.id);
    expect(server.logs.some((l) => l.event === 'channel_crashed' && l.fields.codespace === 'tmp-crash-a')).toBe(true);

    // Same connections, same ids, editing goes on from the durable state.
    expect(await edit(a, 1, 'two ', 'a2')).toBe(2);
    expect(await b.next((m) => m.operation === 'insert_value')).toMatchObject({ version: 2, ref: 'a2' });
    // The resent first edit is recognised by its ref, not applied twice.
    expect(await edit(a, 0, 'one ', 'a1')).toBe(1);
    expect(await edit(other, 0, 'calm', 'o1')).toBe(1);
    expect(other.all((m) => m.operation === 'resync')).toEqual([]);
    expect(a.closed).toBeNull();
    a.close();
    b.close();
    other.close();
  });

  it('answers every edit the dead channel held: acked after resync, or unavailable and resent', async () => {
    server = await startTestServer({ workers: 2 });
    const { client: a } = await TestClient.join(server.urlFor('tmp-crash-burst'));
    const ref = server.hub.supervisor.channel('tmp-crash-burst')!;
    await waitFor(() => ref.thread > 0, 2000, 'channel ready');
    const refs = Array.from({ length: 30 }, (_, i) => `burst-${i}`);
    // SharePython-style edits (no version) appending one letter each: order-independent text.
    for (const r of refs) a.send({ operation: 'insert_value', changes: [{ from: 0, to: 0, insert: 'x' }], ref: r });
    await new Promise((resolve) => setTimeout(resolve, 5));
    server.hub.placement.terminateThread(ref.thread);
    await a.next((m) => m.operation === 'resync');
    const answerOf = (r: string) => a.all((m) => (m.operation === 'ack' && m.ref === r) || (m.operation === 'error' && m.data.ref === r));
    await waitFor(() => refs.every((r) => answerOf(r).length > 0), 5000, 'every edit answered');
    const lost = refs.filter((r) => answerOf(r)[0].operation === 'error');
    for (const r of lost) {
      expect(answerOf(r)[0].data.code).toBe('unavailable');
      a.send({ operation: 'insert_value', changes: [{ from: 0, to: 0, insert: 'x' }], ref: r });
    }
    await waitFor(() => refs.every((r) => answerOf(r).some((m) => m.operation === 'ack')), 5000, 'every edit acked');
    const { connected } = await TestClient.join(server.urlFor('tmp-crash-burst'));
    expect(connected.data.code).toBe('x'.repeat(refs.length));
    a.close();
  });
});
