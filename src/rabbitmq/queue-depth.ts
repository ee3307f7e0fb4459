// Queue depths for the status API, by passive declare: it reads a queue's counters without creating or
// changing it. The count is of messages ready for delivery; messages delivered to a scheduler and not
// acked yet (reserved, or held while the scheduler waits for a free node) are not in it, and AMQP has no
// way to count them (only the management plugin's HTTP API does).
//
// A passive declare of a queue that does not exist is a 404 channel error: the broker closes the
// channel, so the next queue is asked on a new one. Queues are asked one after another on one channel:
// a channel runs one RPC at a time anyway, and a 404 would fail every RPC queued behind it.
import { AMQPChannelError, type Channel, type Connection } from 'rabbitmq-client';

export class QueueDepth {
  constructor(private readonly rabbit: Connection) {}

  /** Whether the broker connection is up (when it is not, asking would only wait for it). */
  get connected(): boolean {
    return this.rabbit.ready;
  }

  /** Ready messages per queue name; a queue that does not exist counts 0. Rejects when the broker cannot be asked. */
  async messageCounts(queues: readonly string[]): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    if (queues.length === 0) return counts;
    let ch: Channel | null = null;
    try {
      for (const queue of queues) {
        ch ??= await this.rabbit.acquire();
        try {
          const ok = await ch.queueDeclare({ queue, passive: true });
          counts.set(queue, ok.messageCount);
        } catch (err) {
          if (!(err instanceof AMQPChannelError && err.code === 'NOT_FOUND')) throw err;
          counts.set(queue, 0);
          await ch.close(); // already closed by the broker: a no-op that makes sure
          ch = null;
        }
      }
    } finally {
      await ch?.close();
    }
    return counts;
  }
}
