/**
 * The piscina task entry: hosts one channel actor for its whole life. The task's promise settles
 * when the channel stops, so the pool's pending task is the supervisor's monitor; a crash is
 * reported over the port as a message, never thrown across threads (STYLE.md rule 9).
 */
import { threadId } from 'node:worker_threads';
import { Channel, type ChannelMessage } from '../actors/channel.ts';
import type { ChannelInbound, ChannelOutbound, SpawnTask } from '../actors/envelopes.ts';
import { Mailbox } from '../actors/mailbox.ts';
import { PortLink } from '../actors/port_link.ts';
import { PortBackplane } from '../backplane/port_backplane.ts';
import { TextDoc } from '../doc/text_doc.ts';

export type ChannelEnd = 'stopped' | 'crashed';

export async function hostChannel(task: SpawnTask): Promise<ChannelEnd> {
  let settle!: (end: ChannelEnd) => void;
  const ended = new Promise<ChannelEnd>((resolve) => (settle = resolve));
  const early: ChannelMessage[] = [];
  let mailbox: Mailbox<ChannelMessage> | null = null;

  const link = new PortLink<ChannelInbound, ChannelOutbound>(task.port, function hostOnEnvelope(envelope) {
    if (envelope.type === 'store_reply') return backplane.receiveReply(envelope.id, envelope.doc, envelope.error);
    if (mailbox) mailbox.post(envelope);
    else early.push(envelope);
  });
  const backplane = new PortBackplane((envelope) => link.send(envelope));

  function end(how: ChannelEnd, message?: string): void {
    if (how === 'crashed') link.send({ type: 'crashed', message: message ?? 'unknown error' });
    link.close();
    settle(how);
  }

  try {
    const doc = new TextDoc(await backplane.load(task.codespace), task.settings);
    const channel = new Channel({
      codespace: task.codespace,
      doc,
      backplane,
      send: function channelSend(envelope) {
        link.send(envelope);
        if (envelope.type === 'stopped') end('stopped');
      },
      snapshotEvery: Math.max(100, Math.floor(task.settings.history / 2)),
    });
    mailbox = new Mailbox<ChannelMessage>(
      (message) => channel.handle(message),
      (error) => end('crashed', error instanceof Error ? error.message : String(error)),
    );
    link.send({ type: 'ready', version: doc.version, thread: threadId });
    for (const message of early.splice(0)) mailbox.post(message);
  } catch (error) {
    end('crashed', error instanceof Error ? error.message : String(error));
  }
  return ended;
}

export default hostChannel;
