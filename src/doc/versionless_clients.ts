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

/**
 * Versions kept with their texts. Texts share structure (a CodeMirror `Text` is a persistent
 * tree), so each costs about the size of its change. A page that loaded the stored `code`
 * (at most SNAPSHOT_INTERVAL_MS old) and joined is recognised within this many versions.
 */
export const RECENT_VERSIONS = 512;

interface Recent extends VersionStep {
  /** The text at `version`. */
  text: Text;
}

export class VersionlessClients implements ServerView {
  readonly #models = new Map<string, VersionlessModel>();
  #recent: Recent[] = [];
  /** The text just before the oldest recent version. */
  #floor: { version: number; text: Text };
  #version: number;
  #text: Text;

  constructor(version: number, text: Text) {
    this.#version = version;
    this.#text = text;
    this.#floor = { version, text };
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

  /** `modelled`: an edit-mode connection without a client key or a resume version. */
  join(session: string, modelled: boolean): void {
    if (modelled) this.#models.set(session, new VersionlessModel(session, this.#version, this.#text));
    else this.#models.delete(session);
  }

  /** Left, or showed it is not version-less (an edit with a version): never repaired. */
  forget(session: string): void {
    this.#models.delete(session);
  }

  model(session: string): VersionlessModel | undefined {
    return this.#models.get(session);
  }

  /** Where a version-less edit lands; undefined when `session` is not modelled. */
  place(session: string, changes: readonly ChangeSpec[], docLength: number | undefined): Placement | undefined {
    return this.#models.get(session)?.place(changes, docLength, this);
  }

  /** Its edit was refused (out of range, too large, store away): it holds what we do not. */
  refused(session: string): void {
    this.#models.get(session)?.refused();
  }

  /** The repairs to send `session` now, in order (usually none, at most one that can land). */
  repairsFor(session: string): RepairMessage[] {
    const model = this.#models.get(session);
    if (!model) return [];
    const reset = model.takeReset();
    return reset ? [reset] : model.repairs(this);
  }

  /** A version was installed, and its broadcast sent to everyone but its author. */
  installed(entry: LogEntry, text: Text, set: ChangeSet = changeSetOf(entry.changes, entry.docLength)): void {
    const step: Recent = { version: entry.version, set, sender: entry.sender, text };
    this.#recent.push(step);
    if (this.#recent.length > RECENT_VERSIONS) {
      const dropped = this.#recent.splice(0, this.#recent.length - RECENT_VERSIONS);
      const last = dropped[dropped.length - 1];
      this.#floor = { version: last.version, text: last.text };
    }
    this.#version = entry.version;
    this.#text = text;
    for (const [session, model] of this.#models) if (session !== entry.sender) model.sent(step);
  }

  /** The channel rebuilt its document from the store: older versions are not comparable. */
  reloaded(version: number, text: Text): void {
    this.#recent = [];
    this.#version = version;
    this.#text = text;
    this.#floor = { version, text };
    for (const model of this.#models.values()) model.historyLost();
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
