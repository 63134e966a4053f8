/**
 * A serial mailbox: one message is fully handled, awaited if the handler is async, before the
 * next one starts (STYLE.md rule 3). A handler that throws stops the mailbox and reports the
 * crash once; the actor is then dead and the supervisor decides what comes next.
 */
export class Mailbox<Message> {
  #queue: Message[] = [];
  #head = 0;
  #running = false;
  #dead = false;
  readonly #handle: (message: Message) => void | Promise<void>;
  readonly #crash: (error: unknown) => void;

  constructor(handle: (message: Message) => void | Promise<void>, crash: (error: unknown) => void) {
    this.#handle = handle;
    this.#crash = crash;
  }

  get dead(): boolean {
    return this.#dead;
  }

  post(message: Message): void {
    if (this.#dead) return;
    this.#queue.push(message);
    if (!this.#running) void this.#drain();
  }

  /**
   * The messages queued next that match, at most `max`, taken out in order: the handler running
   * now handles them together with its own (a channel's queued edits share one commit).
   */
  takeWhile(match: (message: Message) => boolean, max: number): Message[] {
    const taken: Message[] = [];
    while (taken.length < max && this.#head < this.#queue.length && match(this.#queue[this.#head])) taken.push(this.#queue[this.#head++]);
    return taken;
  }

  async #drain(): Promise<void> {
    this.#running = true;
    try {
      while (this.#head < this.#queue.length && !this.#dead) {
        const message = this.#queue[this.#head++];
        const pending = this.#handle(message);
        if (pending) await pending;
      }
    } catch (error) {
      this.#dead = true;
      this.#crash(error);
    } finally {
      // Compact once drained, so the queue does not grow without end on a busy channel.
      this.#queue.length = 0;
      this.#head = 0;
      this.#running = false;
    }
  }
}
