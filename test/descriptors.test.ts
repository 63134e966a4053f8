/**
 * The server's file descriptors, channels and memory (issue 4). 20,000 join/leave cycles, in every
 * way a client can leave, bring them back to where they started; past a low `ulimit -n` new
 * connections fail and nothing else does; an accept error stops the listener for a moment. The
 * server runs as its own process (`src/main.ts`), so `/proc/<pid>/fd` counts its descriptors and
 * nobody else's (Linux only).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, get, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect as tcpConnect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startInstance, type Instance } from './support/instances.ts';
import { startTestServer } from './support/server.ts';
import { TestClient, waitFor } from './support/ws_client.ts';

const isBun = (globalThis as { Bun?: unknown }).Bun !== undefined;
const CYCLES = 20_000;
const IN_FLIGHT = 100;
const CODESPACES = 200;
/** `ulimit -n` of the exhaustion test: the server holds 40-60 descriptors at rest on Node (workers, tsx's esbuild), ~15 on Bun. */
const MAX_OPEN_FILES = 128;
/** Longest the fake SharePython API holds a lookup it was not told to answer (AUTH_TIMEOUT_MS is longer). */
const HOLD_MS = 4_500;
/**
 * How long after its last waiting client went a lookup is answered, unless the server gives the
 * request up first (it should, as soon as it notices the last one gone; ample on a busy machine).
 */
const RELEASE_DELAY_MS = 2_000;

let instance: Instance | null = null;
let api: SlowApi | null = null;
const clients: TestClient[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.socket.terminate();
  await instance?.stop();
  instance = null;
  await api?.close();
  api = null;
});

function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

function rssMiB(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Math.round(Number(match![1]) / 1024);
}

/** User plus system CPU of every thread of the process, in clock ticks (1/100 s on Linux). */
function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

interface Readiness {
  connections: number;
  channels: number;
}

function readyz(port: number): Promise<Readiness> {
  return new Promise((resolve, reject) => {
    // agent: false: a connection of its own, closed after the answer, so it leaves no descriptor open.
    const request = get({ host: '127.0.0.1', port, path: '/readyz', agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve(JSON.parse(body) as Readiness));
    });
    request.on('error', reject);
    request.setTimeout(5_000, () => request.destroy(new Error('/readyz did not answer within 5 s')));
  });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Level extends Readiness {
  fds: number;
}

/**
 * The server at rest: no connection, no channel, no connection to the API (`apiIdle`), and the
 * same descriptor count three times running; or how far it got by the deadline.
 */
async function restingLevel(pid: number, port: number, timeoutMs: number, options: { atMostFds?: number; apiIdle?: () => Promise<boolean> } = {}): Promise<Level> {
  const deadline = Date.now() + timeoutMs;
  const seen: number[] = [];
  let last: Level = { fds: -1, connections: -1, channels: -1 };
  for (;;) {
    // Counted before asking /readyz: that request's own socket is closed by the next round.
    const fds = openFds(pid);
    last = { fds, ...(await readyz(port)) };
    seen.push(fds);
    const steady = seen.length >= 3 && seen.slice(-3).every((count) => count === fds);
    const idle = steady && last.connections === 0 && last.channels === 0 && fds <= (options.atMostFds ?? Infinity);
    if (idle && (!options.apiIdle || (await options.apiIdle()))) return last;
    if (Date.now() > deadline) return last;
    await sleep(150);
  }
}

/**
 * The SharePython token lookup, slow on purpose: `slow-<n>` is granted codespace
 * `api-churn-<n mod CODESPACES>`, but only once the test releases the token (every client
 * waiting for it has gone) or after HOLD_MS. It records when each answer went out.
 */
interface SlowApi {
  url: string;
  /** Token → when its first request arrived. */
  requestedAt: Map<string, number>;
  /** Token → when an answer to it was written out whole. */
  answeredAt: Map<string, number>;
  /** Token → when the server gave up its request before the whole answer reached it (every waiting client gone). */
  abandonedAt: Map<string, number>;
  /** Token → when a response to it closed, after its answer or without one. */
  closedAt: Map<string, number>;
  release(token: string): void;
  /** True when no connection from the server's fetch pool is open. */
  idle(): Promise<boolean>;
  close(): Promise<void>;
}

async function startSlowApi(): Promise<SlowApi> {
  const requestedAt = new Map<string, number>();
  const answeredAt = new Map<string, number>();
  const abandonedAt = new Map<string, number>();
  const closedAt = new Map<string, number>();
  const released = new Set<string>();
  const held = new Map<string, (() => void)[]>();
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const token = /^\/codespace\/([^/]+)\//.exec(request.url ?? '')?.[1] ?? '';
    const n = Number(token.slice('slow-'.length));
    if (!requestedAt.has(token)) requestedAt.set(token, Date.now());
    let answered = false;
    // Given up also when the server went while the answer was on its way (its `end` never finished).
    response.on('close', () => {
      if (!response.writableFinished) abandonedAt.set(token, Date.now());
      closedAt.set(token, Date.now());
    });
    const answer = (): void => {
      if (answered) return;
      answered = true;
      clearTimeout(fallback);
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ uuid: `api-churn-${n % CODESPACES}`, mode: 'edit' }), () => answeredAt.set(token, Date.now()));
    };
    const fallback = setTimeout(answer, HOLD_MS);
    if (released.has(token)) answer();
    else held.set(token, [...(held.get(token) ?? []), answer]);
  });
  // Idle keep-alive connections from the server's fetch pool close soon after the churn.
  server.keepAliveTimeout = 500;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/`,
    requestedAt,
    answeredAt,
    abandonedAt,
    closedAt,
    release(token) {
      released.add(token);
      for (const answer of held.get(token) ?? []) answer();
      held.delete(token);
    },
    idle: () => new Promise((resolve) => server.getConnections((error, count) => resolve(!error && count === 0))),
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

type Leaving = 'clean_close' | 'dropped' | 'half_request' | 'gone_before_101' | 'mid_auth';
const LEAVINGS: Leaving[] = ['clean_close', 'dropped', 'half_request', 'gone_before_101', 'mid_auth'];
/** Consecutive cycles that share a codespace and a slow token (so a channel serves many joins). */
const BLOCK = 25;
/** A masked close frame with code 1000 (a zero mask: the server must unmask, any key will do). */
const CLOSE_FRAME = Buffer.from([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]);
/** The server's answer to it: an unmasked close frame echoing 1000. */
const CLOSE_ECHO = Buffer.from([0x88, 0x02, 0x03, 0xe8]);

function upgradeRequest(port: number, path: string): string {
  return `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n`
    + 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';
}

/**
 * One client, on raw TCP: a hand-made WebSocket costs the test a fraction of a `ws` client (the
 * server's work is the same), and speaks the same bytes on Bun, which swaps in its own `ws`.
 * It leaves in one of the ways of `Leaving`; `onVanished` hears when a mid-auth client went.
 */
function cycleOver(port: number, path: string, leaving: Leaving, onVanished: () => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ host: '127.0.0.1', port });
    let received = Buffer.alloc(0);
    let stage: 'upgrading' | 'joining' | 'closing' | 'gone' = 'upgrading';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`${leaving} stuck ${stage} for 15 s: ${path}`));
    }, 15_000);
    const vanish = (): void => {
      stage = 'gone';
      socket.destroy();
    };
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      if (stage === 'gone') resolve();
      else reject(new Error(`${leaving}: closed by the server while ${stage}: ${received.toString('latin1').slice(0, 200)}`));
    });
    socket.on('connect', () => {
      const request = upgradeRequest(port, path);
      if (leaving === 'half_request') socket.write(request.slice(0, request.length - 40), () => setTimeout(vanish, 2));
      else if (leaving === 'gone_before_101') socket.write(request, vanish);
      else socket.write(request);
    });
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (stage === 'upgrading' && received.includes('\r\n\r\n')) {
        if (!received.toString('latin1').startsWith('HTTP/1.1 101')) return;
        stage = 'joining';
        if (leaving === 'mid_auth') {
          onVanished();
          vanish();
          return;
        }
      }
      if (stage === 'joining' && received.includes('"connected"')) {
        if (leaving === 'dropped') return vanish();
        stage = 'closing';
        socket.write(CLOSE_FRAME);
      }
      // A clean close: the server echoes the close frame, then ends the connection.
      if (stage === 'closing' && received.includes(CLOSE_ECHO)) stage = 'gone';
    });
  });
}

interface Churn {
  failures: string[];
  peakFds: number;
  peakRssMiB: number;
  /** Slow token → when the last client waiting for its lookup went. */
  vanishedAt: Map<string, number>;
  midAuthClients: number;
  ms: number;
}

/**
 * `total` cycles, IN_FLIGHT at a time, the ways of leaving taken in turn. Each BLOCK of cycles
 * shares a codespace (of CODESPACES) and a slow token, so channels serve bursts of joins, stop
 * once idle for the grace period, and are spawned again on the next lap; the token's lookup is
 * answered once the block's mid-auth clients have all gone.
 */
async function churn(server: Instance, lookups: SlowApi, total: number, tokenOffset: number): Promise<Churn> {
  const pid = server.process.pid!;
  const result: Churn = { failures: [], peakFds: 0, peakRssMiB: 0, vanishedAt: new Map(), midAuthClients: 0, ms: 0 };
  const sample = (): void => {
    result.peakFds = Math.max(result.peakFds, openFds(pid));
    result.peakRssMiB = Math.max(result.peakRssMiB, rssMiB(pid));
  };
  const sampler = setInterval(sample, 100);
  const started = Date.now();
  let next = 0;
  const midAuthPerBlock = BLOCK / LEAVINGS.length;
  const goneByToken = new Map<string, number>();
  const vanished = (token: string): void => {
    result.vanishedAt.set(token, Date.now());
    goneByToken.set(token, (goneByToken.get(token) ?? 0) + 1);
    // A moment later, so that the last one's close reaches the server before the answer does.
    if (goneByToken.get(token) === midAuthPerBlock) setTimeout(() => lookups.release(token), RELEASE_DELAY_MS);
  };
  const cycle = (i: number): Promise<void> => {
    const block = Math.floor(i / BLOCK);
    const slowToken = `slow-${tokenOffset + block}`;
    const tmpPath = `/codespace/tmp-churn-${block % CODESPACES}/`;
    const leaving = LEAVINGS[i % LEAVINGS.length];
    // Every other one gone before the 101 has a token that needs the lookup: it outlives the socket.
    const slow = leaving === 'mid_auth' || (leaving === 'gone_before_101' && i % 2 === 1);
    if (leaving === 'mid_auth') result.midAuthClients++;
    return cycleOver(server.port, slow ? `/codespace/${slowToken}/` : tmpPath, leaving, () => vanished(slowToken));
  };
  try {
    await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
      while (next < total) {
        const i = next++;
        await cycle(i).catch((error: Error) => result.failures.push(error.message));
      }
    }));
  } finally {
    clearInterval(sampler);
  }
  sample();
  result.ms = Date.now() - started;
  return result;
}

async function roundTrip(server: Instance, codespace: string): Promise<void> {
  const url = `${server.url}/codespace/${codespace}/`;
  const { client: author } = await TestClient.join(url);
  const { client: reader } = await TestClient.join(url, 'msgpack').catch((error) => {
    author.close();
    throw error;
  });
  try {
    author.send({ operation: 'insert_value', changes: [{ from: 0, to: 0, insert: 'still here' }], version: 0, ref: 'after' });
    expect(await author.next((m) => m.operation === 'ack')).toMatchObject({ version: 1, ref: 'after' });
    expect(await reader.next((m) => m.operation === 'insert_value')).toMatchObject({ version: 1, changes: [{ from: 0, to: 0, insert: 'still here' }] });
  } finally {
    author.close();
    reader.close();
  }
}

/** A client that got `connected`, or how its attempt failed (it is closed then). */
async function joinWithin(url: string, timeoutMs: number): Promise<TestClient | string> {
  const client = new TestClient(url);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no connected within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([client.opened().then(() => client.next((m) => m.operation === 'connected', timeoutMs)), timedOut]);
    return client;
  } catch (error) {
    client.socket.terminate();
    return (error as Error).message.replace(/\d+/g, 'N');
  } finally {
    clearTimeout(timer);
  }
}

/** Warnings and worse that the server logged (LOG_LEVEL=warn keeps only those). */
function warnings(server: Instance): Record<string, unknown>[] {
  return server.logs.filter((line) => typeof line.level === 'number' && line.level >= 40);
}

describe.skipIf(process.platform !== 'linux')('descriptors', () => {
  describe('under churn', () => {
    it('come back to their starting level after 20,000 joins and leaves, and so do channels and memory', async () => {
      api = await startSlowApi();
      instance = await startInstance({
        WORKERS: '2',
        CHANNEL_GRACE_MS: '50',
        LOG_LEVEL: 'warn',
        RATE_LIMIT_PER_S: '0',
        API_BASE_URL: api.url,
        AUTH_TIMEOUT_MS: '10000',
      });
      const pid = instance.process.pid!;
      // Warm up: both workers loaded, a lookup made, every way of leaving taken once, so that
      // what is opened once and kept (the fetch dispatcher, worker state) is in the baseline.
      await roundTrip(instance, 'tmp-warm-up');
      const warmUp = await churn(instance, api, 1_000, 1_000_000);
      expect(warmUp.failures).toEqual([]);
      const before = await restingLevel(pid, instance.port, 15_000, { apiIdle: api.idle });
      expect(before).toMatchObject({ connections: 0, channels: 0 });
      const rssBefore = rssMiB(pid);

      const serverTicks = cpuTicks(pid);
      const during = await churn(instance, api, CYCLES, 0);
      const serverCpuS = (cpuTicks(pid) - serverTicks) / 100;
      expect(during.failures.slice(0, 5)).toEqual([]);
      expect(during.failures.length).toBe(0);
      // Mid-auth was real: each lookup was still unanswered when the last client waiting for it
      // went, and the server then gave its request up rather than keep a socket to the API.
      const tokens = [...during.vanishedAt.keys()];
      const asked = (token: string): boolean => api!.requestedAt.has(token);
      const unended = (): string[] => tokens.filter((token) => asked(token) && !api!.closedAt.has(token) && !api!.answeredAt.has(token));
      await waitFor(() => unended().length === 0, 10_000, 'every lookup the API was asked ended')
        .catch((error: Error) => { throw new Error(`${error.message}: ${unended().length} still open, e.g. ${unended().slice(0, 3).join(', ')}`); });
      // (A lookup may be given up a moment before the test marks its block gone: a client the
      // test counts may have vanished before the server saw its upgrade. And on a loaded machine
      // a few may be answered first: auth.test.ts holds the exact rule. One given up before its
      // request went out never reaches the API: that is given up too.)
      const abandoned = tokens.filter((token) => !api!.answeredAt.has(token) && (api!.abandonedAt.has(token) || !asked(token))).length;
      const askedCount = tokens.filter(asked).length;
      console.info(`churn lookups: ${tokens.length} slow tokens, ${askedCount} reached the API, ${abandoned} given up`);
      // ...but most do reach it: mid-auth joins do start lookups.
      expect(askedCount).toBeGreaterThanOrEqual(0.5 * tokens.length);
      expect(during.midAuthClients).toBe(CYCLES / LEAVINGS.length);
      expect(during.vanishedAt.size).toBe(CYCLES / BLOCK);
      expect(abandoned).toBeGreaterThanOrEqual(0.95 * during.vanishedAt.size);

      // Exactly the starting count: nothing the churn touches may keep a descriptor open. The
      // fetch pool's keep-alive sockets to the API close within its 500 ms keep-alive timeout.
      const after = await restingLevel(pid, instance.port, 20_000, { atMostFds: before.fds, apiIdle: api.idle });
      const rssAfter = rssMiB(pid);
      console.info(`churn: ${CYCLES} cycles in ${during.ms} ms (server CPU ${serverCpuS} s); fds ${before.fds} -> peak ${during.peakFds} -> ${after.fds}; `
        + `channels ${before.channels} -> ${after.channels}; rss ${rssBefore} -> peak ${during.peakRssMiB} -> ${rssAfter} MiB`);
      expect({ fds: after.fds, connections: after.connections, channels: after.channels }).toEqual({ fds: before.fds, connections: 0, channels: 0 });
      // Memory is noisy (heap growth, GC timing): only growth without bound would fail this.
      expect(rssAfter - rssBefore).toBeLessThan(100);

      expect(instance.process.exitCode).toBeNull();
      await roundTrip(instance, 'tmp-after-churn');
      expect(warnings(instance)).toEqual([]);
    }, 150_000);
  });

  describe('at exhaustion', () => {
    it('connections are refused (503) short of `ulimit -n`, with descriptors kept in reserve; every open one keeps working, new ones succeed once some are free', async () => {
      instance = await startInstance({ WORKERS: '2', LOG_LEVEL: 'info', RATE_LIMIT_PER_S: '0' }, { maxOpenFiles: MAX_OPEN_FILES });
      const pid = instance.process.pid!;
      expect(readFileSync(`/proc/${pid}/limits`, 'utf8')).toMatch(new RegExp(`Max open files\\s+${MAX_OPEN_FILES}\\s+${MAX_OPEN_FILES}`));
      await roundTrip(instance, 'tmp-warm-up');
      const baseline = (await restingLevel(pid, instance.port, 10_000)).fds;
      const url = `${instance.url}/codespace/tmp-full/`;
      const refusals: string[] = [];
      // One at a time, so the first refusal marks the limit; a few more after it to see them all fail alike.
      while (refusals.length < 3 && clients.length < MAX_OPEN_FILES) {
        const joined = await joinWithin(url, 2_000);
        if (joined instanceof TestClient) clients.push(joined);
        else refusals.push(joined);
      }
      const open = clients.length;
      const fdsAtLimit = openFds(pid);
      // Connections are refused FD_RESERVE (24) descriptors short of the limit: the server's own
      // needs (a token lookup, a worker replacing a dead one, /readyz) still find one.
      expect(open).toBeGreaterThan(MAX_OPEN_FILES - baseline - 24 - 10);
      expect(fdsAtLimit).toBeGreaterThanOrEqual(MAX_OPEN_FILES - 24 - 4);
      expect(fdsAtLimit).toBeLessThanOrEqual(MAX_OPEN_FILES - 24 + 4);
      expect(refusals[0]).toBe('HTTP N');
      await expect(TestClient.open(url)).rejects.toThrow('HTTP 503');
      expect(await readyz(instance.port)).toMatchObject({ connections: open });
      expect(instance.logs.some((line) => line.event === 'descriptors_low')).toBe(true);
      expect(instance.process.exitCode).toBeNull();

      // At the limit and refusing: no busy loop, nobody dropped.
      const ticks = cpuTicks(pid);
      const since = Date.now();
      for (let i = 0; i < 3; i++) refusals.push(String(await joinWithin(url, 1_000)));
      await sleep(500);
      const coreShare = (cpuTicks(pid) - ticks) * 10 / (Date.now() - since);
      console.info(`exhaustion: limit ${MAX_OPEN_FILES}, ${baseline} fds at rest, ${open} connections open, ${fdsAtLimit} fds; `
        + `refusals: ${[...new Set(refusals)].join(', ')}; CPU at the limit ${Math.round(coreShare * 100)}% of a core`);
      // Bun 1.4's server spun on a full descriptor table (a whole core, accepting in a loop); it
      // is never full now, on either runtime.
      expect(coreShare).toBeLessThan(0.3);
      expect(clients.every((client) => client.closed === null)).toBe(true);

      // Every open connection still works: one edit, acked, reaches all the others.
      const [author, ...readers] = clients;
      author.send({ operation: 'insert_value', changes: [{ from: 0, to: 0, insert: 'full' }], version: 0, ref: 'at-limit' });
      expect(await author.next((m) => m.operation === 'ack')).toMatchObject({ version: 1, ref: 'at-limit' });
      for (const reader of readers) expect(await reader.next((m) => m.operation === 'insert_value')).toMatchObject({ version: 1 });

      // Free ten descriptors: new connections succeed again, into a new channel too.
      for (const client of clients.splice(1, 10)) client.close();
      await waitFor(() => openFds(pid) <= fdsAtLimit - 10, 5_000, 'ten descriptors freed');
      expect(await readyz(instance.port)).toMatchObject({ connections: open - 10 });
      for (let i = 0; i < 5; i++) {
        const joined = await joinWithin(url, 3_000);
        expect(joined).toBeInstanceOf(TestClient);
        clients.push(joined as TestClient);
      }
      await roundTrip(instance, 'tmp-after-full');
      author.send({ operation: 'insert_value', changes: [{ from: 0, to: 0, insert: '!' }], version: 1, ref: 'after-limit' });
      expect(await author.next((m) => m.operation === 'ack')).toMatchObject({ version: 2 });
      expect(await clients[clients.length - 1].next((m) => m.operation === 'insert_value')).toMatchObject({ version: 2 });
      expect(instance.logs.some((line) => line.event === 'descriptors_recovered')).toBe(true);
      expect(warnings(instance).filter((line) => line.event !== 'descriptors_low')).toEqual([]);
    }, 60_000);
  });

  describe('when accept fails', () => {
    // What libuv hands up once its spare descriptor is gone too (see ACCEPT_PAUSE_MS in the
    // acceptor): it cannot be provoked on demand, so it is emitted on the server the accepted
    // sockets belong to. Node only: Bun reports no accept errors (its server retries accepting).
    it.skipIf(isBun)('the server stops listening for a moment instead of crashing or spinning, then listens again', async () => {
      const server = await startTestServer();
      try {
        const { client } = await TestClient.join(server.urlFor('tmp-accept'));
        clients.push(client);
        const [session] = server.acceptor.sessions;
        const http = (session.socket as unknown as { _socket: { server: Server } })._socket.server;
        const failed = Date.now();
        http.emit('error', Object.assign(new Error('accept EMFILE'), { code: 'EMFILE', errno: -24, syscall: 'accept' }));
        expect(server.logs.find((line) => line.event === 'accept_paused')?.fields).toMatchObject({ code: 'EMFILE', syscall: 'accept', connections: 1 });
        await expect(TestClient.open(server.urlFor('tmp-accept'))).rejects.toThrow(/ECONNREFUSED/);
        client.send({ operation: 'insert_value', changes: [{ from: 0, to: 0, insert: 'paused' }], version: 0, ref: 'p' });
        expect(await client.next((m) => m.operation === 'ack')).toMatchObject({ version: 1 });
        let joined: TestClient | string = '';
        while (!(joined instanceof TestClient) && Date.now() - failed < 5_000) {
          await sleep(50);
          joined = await joinWithin(server.urlFor('tmp-accept'), 1_000);
        }
        expect(joined).toBeInstanceOf(TestClient);
        clients.push(joined as TestClient);
        expect(Date.now() - failed).toBeGreaterThanOrEqual(400);
        expect((joined as TestClient).messages[0]).toMatchObject({ operation: 'connected', data: { version: 1 } });
      } finally {
        for (const client of clients.splice(0)) client.close();
        await server.close();
      }
    }, 15_000);
  });
});
