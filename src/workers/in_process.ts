/**
 * Runs channel actors on this thread (WORKERS=0, or a desktop app embedding the server): the
 * same actor, port and envelopes as in a worker, only without the thread.
 */
import type { Placement, ChannelEnd } from '../actors/supervisor.ts';
import type { SpawnTask } from '../actors/envelopes.ts';
import { hostChannel } from './channel_host.ts';

export class InProcessPlacement implements Placement {
  spawn(task: SpawnTask): Promise<ChannelEnd> {
    return hostChannel(task);
  }

  /** Channels share this thread: there is nothing to terminate on its own. */
  terminateThread(_threadId: number): boolean {
    return false;
  }

  async close(): Promise<void> {}
}
