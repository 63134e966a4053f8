/**
 * The live status page at `/status`: one sample a second over server-sent events
 * (`/status/events`, which carries the status cookie when STATUS_TOKEN is set), drawn as tiles,
 * small charts, the workers with their channels, and a log of what changed. With FAULT_INJECTION
 * each channel has buttons that make it throw or hang, to watch the others keep going.
 */
import type { FaultButtonKind, StatusHello, StatusSample } from '../../server/status_types.ts';
import { Charts } from './charts.ts';
import { EventLog } from './event_log.ts';
import { renderTiles, renderWorkers } from './render.ts';
import './status.css';

function byId(id: string): HTMLElement {
  const found = document.getElementById(id);
  if (!found) throw new Error(`the page has no #${id}`);
  return found;
}

class StatusPage {
  readonly #charts = new Charts();
  readonly #events = new EventLog(byId('events'));
  #faultInjection = false;
  #last: StatusSample | null = null;
  #source: EventSource | null = null;

  constructor() {
    byId('workers').addEventListener('click', (event) => this.#workersOnClick(event));
    this.#connect();
  }

  #connect(): void {
    const source = new EventSource('/status/events');
    this.#source = source;
    source.addEventListener('hello', (event) => this.#sourceOnHello(JSON.parse((event as MessageEvent<string>).data) as StatusHello));
    source.addEventListener('message', (event) => this.#sourceOnSample(JSON.parse(event.data) as StatusSample));
    source.addEventListener('open', () => this.#setFeed('live', 'live'));
    source.addEventListener('error', () => this.#sourceOnError(source));
  }

  #sourceOnHello(hello: StatusHello): void {
    this.#faultInjection = hello.faultInjection;
    byId('runtime').textContent = `${hello.runtime} · pid ${hello.pid}${hello.faultInjection ? ' · fault injection on' : ''}`;
    byId('problem').hidden = true;
    // The samples the server took before this page opened fill the charts at once.
    const fresh = this.#last ? hello.history.filter((sample) => sample.t > this.#last!.t) : hello.history;
    this.#charts.push(fresh);
  }

  #sourceOnSample(sample: StatusSample): void {
    if (this.#last && sample.t <= this.#last.t) return;
    this.#setFeed('live', 'live');
    this.#events.compare(this.#last, sample);
    this.#last = sample;
    this.#charts.push([sample]);
    renderTiles(sample);
    renderWorkers(byId('workers'), sample, this.#faultInjection);
  }

  /** EventSource retries by itself after a dropped stream; a refusal (403, 404) closes it for good. */
  #sourceOnError(source: EventSource): void {
    if (source.readyState === EventSource.CLOSED) {
      this.#setFeed('closed', 'no access');
      const problem = byId('problem');
      problem.hidden = false;
      problem.textContent = 'This server refused the live status. On a server that is not on localhost, open /status?token=<STATUS_TOKEN> once in this browser.';
      return;
    }
    this.#setFeed('reconnecting', 'reconnecting…');
  }

  #setFeed(state: string, text: string): void {
    const feed = byId('feed');
    if (feed.dataset.state === state) return;
    feed.dataset.state = state;
    feed.textContent = text;
  }

  #workersOnClick(event: Event): void {
    const button = (event.target as HTMLElement).closest('button[data-fault]') as HTMLButtonElement | null;
    if (!button || !this.#faultInjection) return;
    const channel = button.dataset.channel ?? '';
    const kind = button.dataset.fault as FaultButtonKind;
    void this.#injectFault(channel, kind);
  }

  async #injectFault(channel: string, kind: FaultButtonKind): Promise<void> {
    this.#events.add('fault', `${kind} sent to channel ${channel}`);
    try {
      const response = await fetch('/status/fault', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ channel, kind }) });
      if (!response.ok) this.#events.add('problem', `the server refused the ${kind}: ${(await response.text()).trim()}`);
    } catch (error) {
      this.#events.add('problem', `could not send the ${kind}: ${String(error)}`);
    }
  }
}

new StatusPage();
