// Job queueing in RabbitMQ.
//
//   exchange <prefix>.jobs        direct, durable; routing key = model name
//   queue    <prefix>.jobs.<model> durable, one per model; a delivered, unacked message is a reserved job
//   exchange <prefix>.quarantine  fanout, durable; jobs that ended without a result, with their reason
//   queue    <prefix>.quarantine  durable
//
// Messages are persistent, published with confirms, and carry the job's deadline as their TTL: a job
// that waits past its deadline is dead-lettered to quarantine by the broker (the maintenance role expires
// its row and releases its hold). The message is only the job id; the job row is the source of truth.
import { ConsumerStatus, type AsyncMessage, type Connection, type Consumer, type Publisher } from 'rabbitmq-client';

/**
 * Quarantine is for inspection, not storage (the job row keeps the reason for good): records expire
 * after a week and the queue is capped, dropping the oldest first.
 */
const QUARANTINE_ARGS = { 'x-message-ttl': 7 * 24 * 3_600_000, 'x-max-length': 100_000 };

export interface JobMessage {
  jobId: string;
}

export interface QuarantineMessage {
  jobId: string;
  reason: string;
}

export class JobQueue {
  readonly exchange: string;
  readonly quarantineExchange: string;
  readonly quarantineQueue: string;
  private readonly publisher: Publisher;

  constructor(
    private readonly rabbit: Connection,
    private readonly prefix: string,
  ) {
    this.exchange = `${prefix}.jobs`;
    this.quarantineExchange = `${prefix}.quarantine`;
    this.quarantineQueue = `${prefix}.quarantine`;
    this.publisher = rabbit.createPublisher({
      confirm: true,
      maxAttempts: 3,
      exchanges: this.exchanges(),
      queues: [{ queue: this.quarantineQueue, durable: true, arguments: QUARANTINE_ARGS }],
      queueBindings: [{ queue: this.quarantineQueue, exchange: this.quarantineExchange, routingKey: '' }],
    });
  }

  queueFor(model: string): string {
    return `${this.prefix}.jobs.${model}`;
  }

  private exchanges() {
    return [
      { exchange: this.exchange, type: 'direct', durable: true },
      { exchange: this.quarantineExchange, type: 'fanout', durable: true },
    ];
  }

  /** The exchanges, queue and binding a model's jobs need: one definition for declare, publish and consume. */
  private topology(model: string) {
    return {
      exchanges: this.exchanges(),
      queue: {
        queue: this.queueFor(model),
        durable: true,
        arguments: { 'x-dead-letter-exchange': this.quarantineExchange, 'x-max-priority': 3 },
      },
      binding: { queue: this.queueFor(model), exchange: this.exchange, routingKey: model },
    };
  }

  /** Declares a model's queue and binding (idempotent), so a job published before any scheduler consumes it is kept. */
  async declareModel(model: string): Promise<void> {
    const t = this.topology(model);
    const ch = await this.rabbit.acquire();
    try {
      for (const e of t.exchanges) await ch.exchangeDeclare(e);
      await ch.queueDeclare(t.queue);
      await ch.queueBind(t.binding);
    } finally {
      await ch.close();
    }
  }

  /** Publishes and waits for the broker's confirm; rejects when the broker did not take the message. */
  async publish(model: string, jobId: string, ttlMs: number): Promise<void> {
    const body: JobMessage = { jobId };
    await this.publisher.send(
      {
        exchange: this.exchange,
        routingKey: model,
        durable: true,
        mandatory: true,
        messageId: jobId,
        expiration: String(Math.max(1, Math.floor(ttlMs))),
        priority: 2,
      },
      body,
    );
  }

  async quarantine(jobId: string, reason: string): Promise<void> {
    const body: QuarantineMessage = { jobId, reason };
    await this.publisher.send({ exchange: this.quarantineExchange, routingKey: '', durable: true, messageId: jobId, headers: { 'x-reason': reason } }, body);
  }

  /**
   * Consumes one model's queue. The handler's promise is the reservation: the message stays unacked
   * until it settles, and a crash before then returns it to the queue for another scheduler.
   */
  consume(model: string, concurrency: number, handler: (msg: JobMessage, redelivered: boolean) => Promise<void>): Consumer {
    const t = this.topology(model);
    return this.rabbit.createConsumer(
      {
        queue: t.queue.queue,
        queueOptions: t.queue,
        exchanges: t.exchanges,
        queueBindings: [t.binding],
        qos: { prefetchCount: concurrency },
        concurrency,
        requeue: true,
      },
      async (msg: AsyncMessage) => {
        const body = msg.body as Partial<JobMessage> | null;
        if (!body || typeof body.jobId !== 'string') return ConsumerStatus.DROP; // not ours: to quarantine
        await handler({ jobId: body.jobId }, msg.redelivered);
        return ConsumerStatus.ACK;
      },
    );
  }

  async close(): Promise<void> {
    await this.publisher.close();
  }
}
