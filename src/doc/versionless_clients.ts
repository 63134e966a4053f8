/**
 * One channel's version-less clients (PROTOCOL.md §2): a `VersionlessModel` per such connection,
 * and the recent versions with their texts that the models place edits with. Pure logic: the
 * channel tells it what it installs and sends, and asks it where an edit lands and what repair
 * to send.
 */
import type { ChangeSet, Text } from '@codemirror/state';
import { changeSetOf, type LogEntry } from './text_doc.ts';
import type { ChangeSpec } from '../protocol/messages.ts';
import { VersionlessModel, type Placement, type RepairMessage, type ServerView, type VersionStep } from './versionless_model.ts';
import type { Mode } from '../protocol/messages.ts';

/**
 * Versions kept with their texts. Texts share structure (a CodeMirror `Text` is a persistent
 * tree), so each costs about the size of its change. A page that loaded the stored `code`
 * (at most SNAPSHOT_INTERVAL_MS old) and joined is recognised within this many versions.
 */
export const RECENT_VERSIONS = 512;

/**
 * How far back a page that joins may have loaded its text from: the stored `code` lags by up to
 * SNAPSHOT_INTERVAL_MS, and loading the page and joining takes a moment more.
 */
export const CATCH_UP_MS = 10_000;

/** Older texts of the current length kept as accounts of a joining page, at most. */
const MAX_SAME_LENGTH = 4;

interface Recent extends VersionStep {
  /** The text at `version`. */
  text: Text;
  /** When it was installed (ms). */
  at: number;
}

/**
 * A page modelled since its join that nothing has been sent to yet: what its model starts from.
 * The model itself is made at first need (the first version installed, or its first edit), the
 * same as it would have been made at the join: an idle page costs these few fields (issue 15).
 */
interface Unborn {
  version: number;
  text: Text;
  older: { version: number; text: Text }[];
}

const NO_OLDER: { version: number; text: Text }[] = [];

export class VersionlessClients implements ServerView {
  readonly #models = new Map<string, VersionlessModel | Unborn>();
  #recent: Recent[] = [];
  /** The text just before the oldest recent version. */
  #floor: { version: number; text: Text };
  #version: number;
  #text: Text;
  readonly #now: () => number;
  #failures = 0;

  constructor(version: number, text: Text, now: () => number = Date.now) {
    this.#version = version;
    this.#text = text;
    this.#floor = { version, text };
    this.#now = now;
  }

  get version(): number {
    return this.#version;
  }

  get text(): Text {
    return this.#text;
  }

  get modelled(): number {
    return this.#models.size;
  }

  /**
   * A connection joined. `versionless`: without a client key or a resume version, as the
   * SharePython page joins. Such a page ignores the text in `connected` and holds the one it
   * loaded from the API a moment ago, maybe older; an edit-mode page is modelled from then on,
   * and its first edit shows which text it holds (PROTOCOL.md §2: the model starts from the text
   * in `connected` until the first edit shows otherwise). Nothing is sent at the join: a repair
   * goes only to a page the model knows differs (a speculative one per recent length reached
   * every client without a key, plain protocol clients too). A view_only page that loaded an
   * older `code` catches up at its next load (§2, §7: `code` is kept fresh for that).
   */
  join(session: string, mode: Mode, versionless: boolean): RepairMessage[] {
    this.#models.delete(session);
    if (!versionless || mode !== 'edit') return [];
    const older = this.#sameLengthOlder();
    this.#models.set(session, { version: this.#version, text: this.#text, older: older.length === 0 ? NO_OLDER : older });
    return [];
  }

  /** Texts of the last CATCH_UP_MS with the current length but not the current text, newest first. */
  #sameLengthOlder(): { version: number; text: Text }[] {
    const found: { version: number; text: Text }[] = [];
    const since = this.#now() - CATCH_UP_MS;
    for (let i = this.#recent.length - 1; i >= 0 && this.#recent[i].at >= since && found.length < MAX_SAME_LENGTH; i--) {
      const version = this.#recent[i].version - 1;
      const text = this.textAt(version)!;
      if (text.length === this.#text.length && !text.eq(this.#text) && !found.some((one) => one.text.eq(text))) found.push({ version, text });
    }
    return found;
  }



  /** Left, or showed it is not version-less (an edit with a version): never repaired. */
  forget(session: string): void {
    this.#models.delete(session);
  }

  model(session: string): VersionlessModel | undefined {
    const found = this.#models.get(session);
    if (found === undefined || found instanceof VersionlessModel) return found;
    const model = new VersionlessModel(session, found.version, found.text, found.older);
    this.#models.set(session, model);
    return model;
  }

  /** Models given up after an unexpected error (the page is then served as before issue 12). */
  get failures(): number {
    return this.#failures;
  }

  /** Where a version-less edit lands; undefined when `session` is not modelled. */
  place(session: string, changes: readonly ChangeSpec[], docLength: number | undefined): Placement | undefined {
    return this.#guard(session, (model) => model.place(changes, docLength, this));
  }

  /** Its edit was refused (out of range, too large, store away): it holds what we do not. */
  refused(session: string): void {
    this.model(session)?.refused();
  }

  /** The repairs to send `session` now, in order (usually none, at most one that can land). */
  repairsFor(session: string): RepairMessage[] {
    return this.#guard(session, (model) => {
      const reset = model.takeReset();
      return reset ? [reset] : model.repairs(this);
    }) ?? [];
  }

  /**
   * A model that throws is a bug, and must not take the channel with it (no message may crash
   * a channel): the page is no longer modelled, and its edits are taken as made on the current
   * version, as before.
   */
  #guard<T>(session: string, use: (model: VersionlessModel) => T): T | undefined {
    const model = this.model(session);
    if (!model) return undefined;
    try {
      return use(model);
    } catch {
      this.#failures++;
      this.#models.delete(session);
      return undefined;
    }
  }

  /** A version was installed, and its broadcast sent to everyone but its author. */
  installed(entry: LogEntry, text: Text, set: ChangeSet = changeSetOf(entry.changes, entry.docLength)): void {
    const step: Recent = { version: entry.version, set, sender: entry.sender, text, at: this.#now() };
    this.#recent.push(step);
    // Trimmed in chunks, not one version at every commit (a shift moves the whole array).
    if (this.#recent.length > 2 * RECENT_VERSIONS) {
      const dropped = this.#recent.splice(0, this.#recent.length - RECENT_VERSIONS);
      const last = dropped[dropped.length - 1];
      this.#floor = { version: last.version, text: last.text };
    }
    this.#version = entry.version;
    this.#text = text;
    for (const session of this.#models.keys()) if (session !== entry.sender) this.#guard(session, (model) => model.sent(step, this));
  }

  /** The channel rebuilt its document from the store: older versions are not comparable. */
  reloaded(version: number, text: Text): void {
    this.#recent = [];
    this.#version = version;
    this.#text = text;
    this.#floor = { version, text };
    for (const session of [...this.#models.keys()]) this.model(session)!.historyLost();
  }

  stepsAfter(version: number): VersionStep[] | null {
    if (version < this.#floor.version || version > this.#version) return null;
    return this.#recent.slice(version - this.#floor.version);
  }

  textAt(version: number): Text | null {
    if (version < this.#floor.version || version > this.#version) return null;
    return version === this.#floor.version ? this.#floor.text : this.#recent[version - this.#floor.version - 1].text;
  }
}
