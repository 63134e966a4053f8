/** The status page's tiles and its workers with their channels, drawn from one sample. */
import type { StatusChannel, StatusSample, StatusWorker } from '../../server/status_types.ts';
import { plural, threadName } from './event_log.ts';

function ms(value: number | null): string {
  if (value === null) return '–';
  return value < 10 ? `${value.toFixed(2)} ms` : `${Math.round(value)} ms`;
}

function pair(a: number | null, b: number | null): string {
  if (a === null && b === null) return '–';
  return `${ms(a).replace(' ms', '')} / ${ms(b)}`;
}

function setText(id: string, text: string): void {
  const target = document.getElementById(id);
  if (target && target.textContent !== text) target.textContent = text;
}

export function renderTiles(sample: StatusSample): void {
  setText('connections', String(sample.connections));
  setText('channels', String(sample.channels));
  setText('messages-in', String(sample.messagesInPerS));
  setText('messages-out', String(sample.messagesOutPerS));
  setText('commit', pair(sample.commitP50Ms, sample.commitP99Ms));
  setText('fanout', pair(sample.fanOutP50Ms, sample.fanOutP99Ms));
  setText('main-lag', ms(sample.mainLagMs));
  setText('restarts', String(sample.restarts));
  setText('worker-replacements', String(sample.workerReplacements));
  setText('backplane', `${sample.backplane.kind} · ${sample.backplane.state}`);
  document.getElementById('backplane')?.setAttribute('data-state', sample.backplane.state);
}

function cell(className: string): HTMLTableCellElement {
  const td = document.createElement('td');
  td.className = className;
  return td;
}

function setCell(row: HTMLTableRowElement, index: number, text: string): void {
  const td = row.cells[index];
  if (td && td.textContent !== text) td.textContent = text;
}

function faultButtons(id: string): HTMLTableCellElement {
  const td = cell('actions');
  for (const kind of ['throw', 'hang'] as const) {
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = kind;
    button.className = `fault ${kind}`;
    button.dataset.fault = kind;
    button.dataset.channel = id;
    button.title = kind === 'throw' ? 'Make this channel throw: it restarts, alone' : 'Make this channel spin: its whole worker is replaced';
    td.append(button);
  }
  return td;
}

function newRow(channel: StatusChannel, faults: boolean): HTMLTableRowElement {
  const row = document.createElement('tr');
  row.dataset.channel = channel.id;
  const name = cell('name');
  const kind = document.createElement('span');
  kind.className = `kind ${channel.kind}`;
  kind.textContent = channel.kind;
  const id = document.createElement('code');
  id.textContent = channel.id;
  name.append(kind, id);
  row.append(name, cell('num'), cell('num'), cell('num'), cell('num'), cell('state'));
  if (faults) row.append(faultButtons(channel.id));
  return row;
}

/** Rows are updated in place, not redrawn: a button under the pointer stays the same button. */
function updateRow(row: HTMLTableRowElement, channel: StatusChannel): void {
  row.dataset.thread = String(channel.thread);
  row.dataset.members = String(channel.members);
  row.dataset.restarts = String(channel.restarts);
  row.dataset.edits = String(channel.editsPerS);
  row.dataset.state = channel.state;
  setCell(row, 1, String(channel.members));
  setCell(row, 2, channel.editsPerS.toFixed(1));
  setCell(row, 3, pair(channel.commitP50Ms, channel.commitP99Ms));
  setCell(row, 4, String(channel.restarts));
  row.cells[4]?.classList.toggle('restarted', channel.restarts > 0);
  setCell(row, 5, channel.state);
  for (const button of row.querySelectorAll('button')) button.disabled = channel.state !== 'ready';
}

function newCard(worker: StatusWorker, faults: boolean): HTMLElement {
  const card = document.createElement('article');
  card.className = 'worker';
  card.dataset.thread = String(worker.thread);
  const head = document.createElement('header');
  const title = document.createElement('h3');
  title.textContent = threadName(worker.thread);
  const facts = document.createElement('span');
  facts.className = 'facts';
  head.append(title, facts);
  const table = document.createElement('table');
  const headRow = document.createElement('tr');
  for (const heading of ['channel', 'clients', 'edits/s', 'commit p50 / p99', 'restarts', 'state', ...(faults ? ['inject'] : [])]) {
    const th = document.createElement('th');
    th.textContent = heading;
    headRow.append(th);
  }
  const thead = document.createElement('thead');
  thead.append(headRow);
  table.append(thead, document.createElement('tbody'));
  const empty = document.createElement('p');
  empty.className = 'empty';
  empty.textContent = 'no channels';
  card.append(head, table, empty);
  return card;
}

/** Puts `wanted` in `parent` in that order, keeping the elements that stay. */
function arrange(parent: Element, wanted: Element[]): void {
  wanted.forEach((child, i) => {
    if (parent.children[i] !== child) parent.insertBefore(child, parent.children[i] ?? null);
  });
  while (parent.children.length > wanted.length) parent.lastElementChild?.remove();
}

function updateCard(card: HTMLElement, worker: StatusWorker, faults: boolean): void {
  const facts = card.querySelector('.facts');
  const text = `${plural(worker.channels.length, 'channel')} · lag p99 ${ms(worker.lagMs)}`;
  if (facts && facts.textContent !== text) facts.textContent = text;
  const tbody = card.querySelector('tbody')!;
  const rows = new Map([...tbody.rows].map((row) => [row.dataset.channel, row]));
  const wanted = worker.channels.map((channel) => {
    const row = rows.get(channel.id) ?? newRow(channel, faults);
    updateRow(row, channel);
    return row;
  });
  arrange(tbody, wanted);
  card.classList.toggle('idle', worker.channels.length === 0);
}

export function renderWorkers(container: HTMLElement, sample: StatusSample, faults: boolean): void {
  const cards = new Map([...container.children].map((card) => [(card as HTMLElement).dataset.thread, card as HTMLElement]));
  const wanted = sample.workers.map((worker) => {
    const card = cards.get(String(worker.thread)) ?? newCard(worker, faults);
    updateCard(card, worker, faults);
    return card;
  });
  arrange(container, wanted);
}
