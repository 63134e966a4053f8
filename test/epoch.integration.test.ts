/**
 * Issue 11, finding 6: two instances, one Redis that restarts empty. A restore never overwrites
 * versions committed after the store came back; an instance that finds its history gone brings
 * its acked changes back on top of the new one; both converge; a resume across the new epoch
 * gets a full `connected` (PROTOCOL.md §1, §7).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type TestRedis } from './support/redis.ts';
import { startInstance, type Instance } from './support/instances.ts';
import { TestClient, type Message } from './support/ws_client.ts';

let redis: TestRedis;
let instances: Instance[] = [];
const open: TestClient[] = [];

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
});
afterEach(async () => {
  for (const client of open.splice(0)) client.close();
  for (const instance of instances) if (instance.process.pid) try { process.kill(instance.process.pid, 'SIGCONT'); } catch { /* gone */ }
  await Promise.all(instances.map((instance) => instance.kill()));
  instances = [];
});

async function join(instance: Instance, token: string, query = ''): Promise<{ client: TestClient; connected: Message }> {
  const joined = await TestClient.join(`${instance.url}/codespace/${token}/${query ? `?${query}` : ''}`);
  open.push(joined.client);
  return joined;
}

async function append(client: TestClient, version: number, docLength: number, insert: string, ref: string): Promise<Message> {
  client.send({ operation: 'insert_value', changes: [{ from: docLength, to: docLength, insert }], version, ref });
  return client.next((m) => (m.operation === 'ack' || m.operation === 'error') && (m.ref === ref || m.data?.ref === ref));
}

async function textsOf(token: string): Promise<string[]> {
  return Promise.all(instances.map(async (instance) => {
    const { client, connected } = await TestClient.join(`${instance.url}/codespace/${token}/`);
    client.close();
    return connected.data.code as string;
  }));
}

/** Polls `check` until it holds; generous, for a machine busy with other test files. */
async function until(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function twoInstances(): Promise<[Instance, Instance]> {
  instances = await Promise.all([0, 1].map(() => startInstance({ REDIS_URL: redis.url, SNAPSHOT_INTERVAL_MS: '100', CHANNEL_GRACE_MS: '60000' })));
  return instances as [Instance, Instance];
}

/** Twenty acked edits on instance A; returns its client, the text, the epoch. */
async function twentyOn(a: Instance, token: string): Promise<{ client: TestClient; text: string; epoch: string }> {
  const { client, connected } = await join(a, token, 'client=a-client-key-0123456789');
  let text = connected.data.code as string;
  for (let v = 0; v < 20; v++) {
    expect(await append(client, v, text.length, `a${v};`, `a${v}`)).toMatchObject({ operation: 'ack', version: v + 1 });
    text += `a${v};`;
  }
  return { client, text, epoch: connected.data.epoch as string };
}

describe('Redis restarted empty, two instances', () => {
  it('a join on B in between: B\'s acked edit and A\'s twenty all survive, both converge, a resume across epochs is full', async () => {
    const [a, b] = await twoInstances();
    const token = 'tmp-epoch-join';
    const { client: onA, text: aText, epoch } = await twentyOn(a, token);
    process.kill(a.process.pid!, 'SIGSTOP'); // A cannot notice anything until B has committed
    await redis.kill();
    await redis.start();
    const { client: onB, connected } = await join(b, token, 'client=b-client-key-0123456789');
    expect(connected.data).toMatchObject({ version: 0, code: '' });
    expect(connected.data.epoch).not.toBe(epoch);
    expect(await append(onB, 0, 0, 'B!', 'b1')).toMatchObject({ operation: 'ack', version: 1 });
    process.kill(a.process.pid!, 'SIGCONT');
    await onA.next((m) => m.operation === 'resync', 60_000);
    let texts: string[] = [];
    await until('both instances on one text', async () => {
      texts = await textsOf(token);
      return texts[0] === texts[1] && texts[0].includes('B!') && texts[0].includes(aText);
    });
    expect(texts[0]).toBe('B!' + aText);
    expect(onB.closed).toBeNull();
    const resumed = await join(a, token, `version=20&epoch=${epoch}`);
    expect(resumed.connected.data.resumed).toBeUndefined();
    expect(resumed.connected.data.code).toBe(texts[0]);
  }, 120_000);

  it('no join in between: A writes its history back with its epoch, and a resume is served from it', async () => {
    const [a] = await twoInstances();
    const token = 'tmp-epoch-alone';
    const { text, epoch } = await twentyOn(a, token);
    await redis.kill();
    await redis.start();
    await until('A restored the store', async () => Number(await redis.client.hget(token, 'version').catch(() => null)) === 20);
    expect(await redis.client.hget(token, 'epoch')).toBe(epoch);
    const resumed = await join(a, token, `version=18&epoch=${epoch}`);
    expect(resumed.connected.data).toMatchObject({ resumed: true, version: 20, epoch });
    const fresh = await join(instances[1], token);
    expect(fresh.connected.data.code).toBe(text);
  }, 120_000);
});
