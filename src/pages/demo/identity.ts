/**
 * Who this page is to its peers: a name and a colour, chosen at random once and kept in
 * localStorage, sent as scalar fields of `create_selection` (PROTOCOL.md §2). Colours come from
 * a fixed palette drawn by CSS classes (`peer-0` … `peer-9`): the page's content security
 * policy allows no inline styles, and a peer cannot inject a colour of its own.
 */

/** Tableau 10, grey swapped for cyan: distinct on white and as 25% selection tints. */
export const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#17becf'] as const;

const ADJECTIVES = ['Quick', 'Calm', 'Bright', 'Brave', 'Clever', 'Gentle', 'Lucky', 'Merry', 'Swift', 'Witty', 'Bold', 'Kind'];
const ANIMALS = ['Otter', 'Falcon', 'Panda', 'Lynx', 'Heron', 'Fox', 'Koala', 'Badger', 'Gecko', 'Marten', 'Puffin', 'Wombat'];

export const MAX_NAME_LENGTH = 32;

export interface Identity {
  name: string;
  /** Index into PALETTE. */
  colour: number;
}

function randomIndex(length: number): number {
  return crypto.getRandomValues(new Uint32Array(1))[0] % length;
}

function stored(key: string): string | null {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

function store(key: string, value: string): void {
  try {
    localStorage.setItem(key, value);
  } catch {
    // private mode or storage full: the identity lasts as long as the page
  }
}

export function cleanName(raw: string): string {
  return raw.replace(/\s+/g, ' ').trim().slice(0, MAX_NAME_LENGTH);
}

export function loadIdentity(): Identity {
  let name = cleanName(stored('codespace-demo-name') ?? '');
  if (!name) store('codespace-demo-name', (name = `${ADJECTIVES[randomIndex(ADJECTIVES.length)]} ${ANIMALS[randomIndex(ANIMALS.length)]}`));
  const storedColour = stored('codespace-demo-colour');
  let colour = storedColour === null ? -1 : Number(storedColour);
  if (!Number.isInteger(colour) || colour < 0 || colour >= PALETTE.length) store('codespace-demo-colour', String((colour = randomIndex(PALETTE.length))));
  return { name, colour };
}

export function saveName(name: string): void {
  store('codespace-demo-name', name);
}

/** A peer's colour: its own when it is one of the palette's, else one derived from its id. */
export function colourOf(sent: unknown, peerId: string): number {
  const index = typeof sent === 'string' ? PALETTE.indexOf(sent.toLowerCase() as (typeof PALETTE)[number]) : -1;
  if (index >= 0) return index;
  let hash = 0;
  for (let i = 0; i < peerId.length; i++) hash = (hash * 31 + peerId.charCodeAt(i)) >>> 0;
  return hash % PALETTE.length;
}
