/**
 * The load generator: its own process, driven by bench/run.ts over IPC (one JSON command in,
 * one JSON result out, also printed on stdout). It opens rooms × clients raw WebSocket clients
 * (bench/ws_raw.ts), makes each send edits and selections at a rate, and measures on its own
 * clock what comes back: delivered against expected, latency from send to each peer's receipt,
 * and its own CPU, so that a saturated generator shows in the results.
 *
 * Every message it sends carries `"ref":"<step>_<t>_<client>"` (t: performance.now() in 10 µs units);
 * this server echoes `ref` in the broadcast and relays selections whole, the naive one relays
 * every frame as it came, so receivers find the send time by a byte search, with no JSON parse.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { percentile } from '../src/stress/metrics.ts';
import { RawClient, type FrameSink } from './ws_raw.ts';

export type Command =
  | { cmd: 'open'; host: string; port: number; rooms: number; clients: number; prefix: string; inFlight?: number; timeoutMs?: number }
  | { cmd: 'step'; rate: number; seconds: number; step: number }
  | { cmd: 'fault'; kind: 'throw' | 'hang'; windowMs: number }
  | { cmd: 'close' }
  | { cmd: 'exit' };

const OP_OFFSET = 14; // {"operation":"
const REF_MARKER = Buffer.from('"ref":"');
const VERSION_MARKER = Buffer.from('"version":');
const CODE_MARKER = Buffer.from('"code":"');
const CH_I = 0x69; // insert_value
const CH_C = 0x63; // create_selection / connected
const CH_A = 0x61; // ack
const CH_E = 0x65; // error
const CH_R = 0x72; // resync
const CH_O = 0x6f;
const CH_UNDERSCORE = 0x5f;

/** Latency histogram: 10 µs bins up to 10 s, one overflow bin. */
class Histogram {
  readonly #bins = new Uint32Array(1_000_001);
  count = 0;
  max = 0;

  add(ms: number): void {
    const bin = Math.min(1_000_000, Math.max(0, Math.round(ms * 100)));
    this.#bins[bin]++;
    this.count++;
    if (ms > this.max) this.max = ms;
  }

  percentile(p: number): number {
    if (this.count === 0) return 0;
    const rank = Math.ceil((p / 100) * this.count);
    let seen = 0;
    for (let i = 0; i < this.#bins.length; i++) {
      seen += this.#bins[i];
      if (seen >= rank) return i / 100;
    }
    return this.max;
  }

  reset(): void {
    this.#bins.fill(0);
    this.count = 0;
    this.max = 0;
  }

  summary(): { n: number; p50: number; p99: number; max: number } {
    return { n: this.count, p50: this.percentile(50), p99: this.percentile(99), max: round2(this.max) };
  }
}

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}

/** Reads the decimal integer at data[at...]; -1 if none. */
function readInt(data: Buffer, at: number, end: number): number {
  let value = 0;
  let digits = 0;
  for (let i = at; i < end; i++) {
    const c = data[i] - 48;
    if (c < 0 || c > 9) break;
    value = value * 10 + c;
    digits++;
  }
  return digits === 0 ? -1 : value;
}

interface Room {
  index: number;
  members: Client[];
}

const edits = new Histogram();
const selections = new Histogram();
const probes = new Histogram();
let currentStep = -1;
let delivered = 0;
let acks = 0;
let errors = 0;
let errorCodes: Record<string, number> = {};
let otherOps = 0;
let faultT0 = 0;
let resyncs: number[] = [];
let faultMode: 'none' | 'throw' | 'hang' = 'none';
/** The worst latency of each 250 ms of a step (by receipt time): shows stalls that recur. */
let timeline: number[] = [];
let stepStartedAt = 0;

let clientCounter = 0;

class Client implements FrameSink {
  /**
   * In every ref: this server applies a ref once per codespace (a second edit with the same ref
   * is acked and dropped), and clients of one tick share the send time.
   */
  readonly id = (clientCounter++).toString(36);
  readonly room: Room;
  readonly raw: RawClient;
  version = 0;
  connectedAt = 0;
  sent = 0;
  phase = Math.random();
  onConnected: (() => void) | null = null;
  /** Hang runs: from the fault to the first ack of a probe sent after it (-1: none yet). */
  servedAgainMs = -1;
  unanswered = 0;

  constructor(room: Room, host: string, port: number, path: string) {
    this.room = room;
    this.raw = new RawClient(host, port, path, this);
  }

  opened(): void {}

  closed(): void {
    this.onConnected?.();
    this.onConnected = null;
  }

  frame(data: Buffer, start: number, end: number): void {
    const op = data[start + OP_OFFSET];
    if (op === CH_I || (op === CH_C && data[start + OP_OFFSET + 1] === 0x72)) {
      const at = this.#sendTimeOf(data, start, end);
      if (op === CH_I) this.#readVersion(data, start, end);
      if (at === null) return;
      delivered++;
      const now = performance.now();
      (op === CH_I ? edits : selections).add(now - at);
      const slot = Math.floor((now - stepStartedAt) / 250);
      if (slot >= 0 && slot < timeline.length && now - at > timeline[slot]) timeline[slot] = now - at;
    } else if (op === CH_A) {
      acks++;
      this.#readVersion(data, start, end);
      if (faultMode === 'hang') this.#probeAnswered(data, start, end);
    } else if (op === CH_C && data[start + OP_OFFSET + 1] === CH_O) {
      this.#readVersion(data, start, end);
      this.connectedAt = performance.now();
      this.onConnected?.();
      this.onConnected = null;
    } else if (op === CH_R) {
      this.#readVersion(data, start, end);
      if (faultMode === 'throw') resyncs.push(performance.now() - faultT0);
    } else if (op === CH_E) {
      errors++;
      const at = data.indexOf(CODE_MARKER, start);
      if (at >= 0 && at < end) {
        const code = data.toString('latin1', at + CODE_MARKER.length, Math.min(end, at + CODE_MARKER.length + 20)).split('"')[0];
        errorCodes[code] = (errorCodes[code] ?? 0) + 1;
      }
      if (faultMode === 'hang') this.unanswered++;
    } else {
      otherOps++;
    }
  }

  /** The send time of a message of the current step, or null (another step's, or none). */
  #sendTimeOf(data: Buffer, start: number, end: number): number | null {
    const ref = data.indexOf(REF_MARKER, start);
    if (ref < 0 || ref >= end) return null;
    const stepAt = ref + REF_MARKER.length;
    const step = readInt(data, stepAt, end);
    if (step !== currentStep) return null;
    let at = stepAt;
    while (at < end && data[at] !== CH_UNDERSCORE) at++;
    const t = readInt(data, at + 1, end);
    return t < 0 ? null : t / 100;
  }

  #probeAnswered(data: Buffer, start: number, end: number): void {
    const at = this.#sendTimeOf(data, start, end);
    if (at === null || at < faultT0) return;
    const now = performance.now();
    probes.add(now - at);
    if (this.servedAgainMs < 0) this.servedAgainMs = now - faultT0;
  }

  #readVersion(data: Buffer, start: number, end: number): void {
    const at = data.indexOf(VERSION_MARKER, start);
    if (at < 0 || at >= end) return;
    const version = readInt(data, at + VERSION_MARKER.length, end);
    if (version > this.version) this.version = version;
  }

  sendEdit(step: number): void {
    const t = Math.round(performance.now() * 100);
    this.raw.sendText(`{"operation":"insert_value","changes":[{"from":0,"to":0,"insert":"a\\n"}],"version":${this.version},"ref":"${step}_${t}_${this.id}"}`);
  }

  sendSelection(step: number): void {
    const t = Math.round(performance.now() * 100);
    this.raw.sendText(`{"operation":"create_selection","selections":[{"anchor":0,"head":0}],"ref":"${step}_${t}_${this.id}"}`);
  }
}

let rooms: Room[] = [];
let clients: Client[] = [];

function percentileOf(values: number[], p: number): number {
  return round2(percentile([...values].sort((a, b) => a - b), p) ?? 0);
}

function cpuSince(start: NodeJS.CpuUsage, wallMs: number): number {
  const used = process.cpuUsage(start);
  return round2((used.user + used.system) / 1000 / wallMs);
}

async function open(command: Extract<Command, { cmd: 'open' }>): Promise<Record<string, unknown>> {
  const inFlight = command.inFlight ?? 200;
  const deadline = Date.now() + (command.timeoutMs ?? 60_000);
  const cpu = process.cpuUsage();
  const started = performance.now();
  const base = rooms.length;
  const pending: { room: Room; index: number }[] = [];
  for (let r = 0; r < command.rooms; r++) {
    const room: Room = { index: base + r, members: [] };
    rooms.push(room);
    for (let c = 0; c < command.clients; c++) pending.push({ room, index: c });
  }
  const opened: Client[] = [];
  let next = 0;
  let running = 0;
  await new Promise<void>((resolve) => {
    const launch = (): void => {
      while (running < inFlight && next < pending.length && Date.now() < deadline) {
        const { room } = pending[next++];
        const client = new Client(room, command.host, command.port, `/codespace/${command.prefix}-${room.index}/`);
        room.members.push(client);
        opened.push(client);
        running++;
        client.onConnected = () => {
          running--;
          if (next >= pending.length && running === 0) resolve();
          else launch();
        };
      }
      if (Date.now() >= deadline) resolve();
    };
    launch();
    setTimeout(resolve, Math.max(0, deadline - Date.now())).unref();
  });
  const wallMs = performance.now() - started;
  clients.push(...opened);
  const joined = opened.filter((client) => client.connectedAt > 0);
  const toConnected = joined.map((client) => client.connectedAt - client.raw.startedAt);
  const afterUpgrade = joined.filter((client) => client.raw.upgradedAt > 0).map((client) => client.connectedAt - client.raw.upgradedAt);
  return {
    opened: opened.length,
    connected: joined.length,
    seconds: round2(wallMs / 1000),
    connectionsPerS: Math.round(joined.length / (wallMs / 1000)),
    toConnectedMs: { p50: percentileOf(toConnected, 50), p99: percentileOf(toConnected, 99), max: percentileOf(toConnected, 100) },
    upgradeToConnectedMs: { p50: percentileOf(afterUpgrade, 50), p99: percentileOf(afterUpgrade, 99) },
    generatorCpu: cpuSince(cpu, wallMs),
    inFlight,
  };
}

/** Sends at `rate` messages per second per client (edits and selections alternately) for `seconds`. */
async function step(command: Extract<Command, { cmd: 'step' }>): Promise<Record<string, unknown>> {
  currentStep = command.step;
  edits.reset();
  selections.reset();
  delivered = 0;
  acks = 0;
  errors = 0;
  errorCodes = {};
  const live = clients.filter((client) => client.raw.open);
  const roomSize = new Map<Room, number>();
  for (const client of live) roomSize.set(client.room, (roomSize.get(client.room) ?? 0) + 1);
  for (const client of live) client.sent = 0;
  let expected = 0;
  let sent = 0;
  const loopDelay = monitorEventLoopDelay({ resolution: 5 });
  loopDelay.enable();
  const cpu = process.cpuUsage();
  const started = performance.now();
  const durationMs = command.seconds * 1000;
  stepStartedAt = started;
  timeline = new Array(Math.ceil((durationMs + 3_000) / 250)).fill(0);
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const elapsed = Math.min(durationMs, performance.now() - started);
      for (const client of live) {
        const due = Math.floor((elapsed / 1000) * command.rate + client.phase);
        while (client.sent < due) {
          if (client.sent % 2 === 0) client.sendEdit(command.step);
          else client.sendSelection(command.step);
          client.sent++;
          sent++;
          expected += (roomSize.get(client.room) ?? 1) - 1;
        }
      }
      if (elapsed >= durationMs) {
        clearInterval(timer);
        resolve();
      }
    }, 5);
  });
  const sendMs = performance.now() - started;
  // Stragglers: wait until everything expected came, or nothing more comes, at most 3 s.
  let last = delivered;
  let quietSince = performance.now();
  while (delivered < expected && performance.now() - quietSince < 500 && performance.now() - started < durationMs + 3_000) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    if (delivered !== last) {
      last = delivered;
      quietSince = performance.now();
    }
  }
  const wallMs = performance.now() - started;
  loopDelay.disable();
  const all = { n: edits.count + selections.count, p50: 0, p99: 0, max: round2(Math.max(edits.max, selections.max)) };
  // Combined percentiles: merge by weighting is not exact; take the worse of the two p99s.
  all.p50 = Math.max(edits.percentile(50), selections.percentile(50));
  all.p99 = Math.max(edits.percentile(99), selections.percentile(99));
  currentStep = -1;
  return {
    step: command.step,
    ratePerClient: command.rate,
    clients: live.length,
    seconds: round2(sendMs / 1000),
    sent,
    expected,
    delivered,
    deliveredRatio: expected === 0 ? 0 : round2((delivered / expected) * 100) / 100,
    deliveredPerS: Math.round(delivered / (sendMs / 1000)),
    offeredPerS: Math.round(expected / (sendMs / 1000)),
    latencyMs: all,
    editLatencyMs: edits.summary(),
    selectionLatencyMs: selections.summary(),
    acks,
    errors,
    errorCodes,
    generatorCpu: cpuSince(cpu, wallMs),
    generatorLoopDelayP99Ms: round2(loopDelay.percentile(99) / 1e6),
    worstPer250Ms: timeline.slice(0, Math.ceil(wallMs / 250)).map((ms) => Math.round(ms)),
  };
}

/**
 * `throw`: one client of room 0 crashes its channel; time until each of room 0's clients has its
 * `resync`. `hang`: one client per room sends an edit every 20 ms; one client of room 0 hangs
 * its worker; for each room, the longest a probe sent after the hang waited for its `ack`.
 */
async function fault(command: Extract<Command, { cmd: 'fault' }>): Promise<Record<string, unknown>> {
  const room0 = rooms[0].members.filter((client) => client.raw.open);
  const faulty = room0[room0.length - 1];
  resyncs = [];
  probes.reset();
  errors = 0;
  currentStep = 900_000 + Math.floor(Math.random() * 1000);
  const probeClients = rooms.map((room) => room.members.find((client) => client.raw.open && client !== faulty)).filter((c): c is Client => c !== undefined);
  for (const client of probeClients) {
    client.servedAgainMs = -1;
    client.unanswered = 0;
  }
  let timer: ReturnType<typeof setInterval> | undefined;
  faultT0 = Infinity; // probes answered before the fault count for nothing
  if (command.kind === 'hang') {
    faultMode = 'hang';
    timer = setInterval(() => {
      for (const client of probeClients) client.sendEdit(currentStep);
    }, 20);
    await new Promise((resolve) => setTimeout(resolve, 300));
  } else {
    faultMode = 'throw';
  }
  faultT0 = performance.now();
  faulty.raw.sendText(`{"operation":"__fault","kind":"${command.kind}"}`);
  const deadline = faultT0 + command.windowMs;
  while (performance.now() < deadline) {
    if (command.kind === 'throw' && resyncs.length >= room0.length) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  clearInterval(timer);
  await new Promise((resolve) => setTimeout(resolve, command.kind === 'hang' ? 500 : 0));
  faultMode = 'none';
  currentStep = -1;
  if (command.kind === 'throw') {
    return { kind: 'throw', clients: room0.length, resynced: resyncs.length, toResyncMs: { p50: percentileOf(resyncs, 50), max: percentileOf(resyncs, 100) } };
  }
  // A probe sent while its channel's worker spins is answered `unavailable` once the channel
  // restarts; the room serves again at the first ack of a probe sent after the fault.
  const faultedRoom = probeClients.find((client) => client.room === rooms[0]);
  const others = probeClients.filter((client) => client.room !== rooms[0]);
  const served = (client: Client): number => (client.servedAgainMs < 0 ? command.windowMs : client.servedAgainMs);
  const stalled = others.filter((client) => served(client) > 250);
  const healthy = others.filter((client) => served(client) <= 250);
  return {
    kind: 'hang',
    rooms: probeClients.length,
    faultedRoomServedAgainMs: round2(faultedRoom ? served(faultedRoom) : -1),
    roomsStalledWithIt: stalled.length,
    stalledServedAgainMs: round2(Math.max(0, ...stalled.map(served))),
    healthyRooms: healthy.length,
    healthyServedAgainMs: round2(Math.max(0, ...healthy.map(served))),
    probeAckMs: probes.summary(),
    unavailableAnswers: errors,
  };
}

function closeAll(): Record<string, unknown> {
  const count = clients.length;
  for (const client of clients) client.raw.destroy();
  clients = [];
  rooms = [];
  return { closed: count };
}

async function run(command: Command): Promise<Record<string, unknown>> {
  switch (command.cmd) {
    case 'open':
      return open(command);
    case 'step':
      return step(command);
    case 'fault':
      return fault(command);
    case 'close':
      return closeAll();
    case 'exit':
      closeAll();
      setTimeout(() => process.exit(0), 50);
      return { exiting: true };
  }
}

function reply(result: Record<string, unknown>): void {
  const line = JSON.stringify(result);
  process.stdout.write(line + '\n');
  process.send?.(result);
}

if (process.send) {
  process.on('message', (command: Command) => {
    run(command).then(reply, (error: unknown) => reply({ error: String(error) }));
  });
  process.on('disconnect', () => process.exit(0));
} else {
  // Standalone: loadgen.ts <port> <rooms> <clients> <rate> <seconds>
  const [port, roomCount, clientCount, rate, seconds] = process.argv.slice(2).map(Number);
  if (!port) {
    process.stderr.write('usage: node --import tsx bench/loadgen.ts <port> <rooms> <clients> <rate per client> <seconds>\n');
    process.exit(2);
  }
  (async () => {
    reply(await open({ cmd: 'open', host: '127.0.0.1', port, rooms: roomCount || 10, clients: clientCount || 10, prefix: `tmp-bench-${Date.now()}` }));
    reply(await step({ cmd: 'step', rate: rate || 5, seconds: seconds || 5, step: 1 }));
    closeAll();
    process.exit(0);
  })();
}
