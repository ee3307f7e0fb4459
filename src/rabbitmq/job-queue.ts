// Job queueing in RabbitMQ.
//
//   exchange <prefix>.jobs                  direct, durable; routing key = <model>.<class>
//   queue    <prefix>.jobs.<model>.<class>  durable, one per model and priority class (urgent, standard,
//                                           bulk, test); a delivered, unacked message is a reserved job
//   exchange <prefix>.quarantine  fanout, durable; jobs that ended without a result, with their reason
//   queue    <prefix>.quarantine  durable
//
// Messages are persistent, published with confirms, and carry the job's deadline as their TTL: a job
// that waits past its deadline is dead-lettered to quarantine by the broker (the maintenance role expires
// its row and releases its hold). The message is the job's ticket (domain/job-ticket.ts: its terms and
// its input), so that the scheduler needs no read to run it; the job row stays the source of truth, and
// every step that changes it is fenced there. A message of an older version carries the job id alone.
//
// Queue type (RABBITMQ_QUEUE_TYPE): classic (one broker node) or quorum (Raft-replicated over a cluster).
// Nothing here needs what quorum queues lack: there is no broker priority (x-max-priority, which quorum
// queues only gained in RabbitMQ 4.0; see below: a queue per class), no exclusive or auto-delete queue.
// What they must have: per-message TTL (the job's deadline) and x-message-ttl (the quarantine), both from
// RabbitMQ 3.10; dead-lettering (at-most-once, the default, enough: the job row keeps the reason) and
// x-max-length with drop-head (the quarantine cap). An older broker refuses the quarantine's x-message-ttl
// on a quorum queue: verifyTopology turns that into an error that says so, at start.
//
// One queue per class rather than one priority queue: a broker priority queue delivers strictly by
// priority, so a steady stream of urgent jobs would starve bulk jobs queued behind it. With a queue per
// class, each class keeps its own window of delivered jobs at every scheduler, and the scheduler's fair
// dispatcher (src/scheduler/fair-queue.ts) shares free nodes between the classes by weight.
import { AMQPChannelError, ConsumerStatus, type AsyncMessage, type Connection, type Publisher } from 'rabbitmq-client';

export type QueueType = 'classic' | 'quorum';
import { PRIORITY_CLASSES, type PriorityClass } from '../domain/priority.js';
import { jobTicketSchema, type JobTicket } from '../domain/job-ticket.js';

/**
 * Quarantine is for inspection, not storage (the job row keeps the reason for good): records expire
 * after a week and the queue is capped, dropping the oldest first.
 */
const QUARANTINE_ARGS = { 'x-message-ttl': 7 * 24 * 3_600_000, 'x-max-length': 100_000 };

/** A delivered job: its ticket, or only its id (a message published before tickets, or one that does not parse). */
export interface JobMessage {
  jobId: string;
  ticket: JobTicket | null;
}

export interface QuarantineMessage {
  jobId: string;
  reason: string;
}

/** A running consumer of one queue, as its callers see it (no broker client types outside this folder). */
export interface JobConsumer {
  close(): Promise<void>;
  on(event: 'error', listener: (err: unknown) => void): unknown;
}

export class JobQueue {
  readonly exchange: string;
  readonly quarantineExchange: string;
  readonly quarantineQueue: string;
  private readonly publisher: Publisher;

  constructor(
    private readonly rabbit: Connection,
    private readonly prefix: string,
    readonly queueType: QueueType = 'classic',
  ) {
    this.exchange = `${prefix}.jobs`;
    this.quarantineExchange = `${prefix}.quarantine`;
    this.quarantineQueue = `${prefix}.quarantine`;
    this.publisher = rabbit.createPublisher({
      confirm: true,
      maxAttempts: 3,
      exchanges: this.exchanges(),
      queues: [this.quarantineDeclaration()],
      queueBindings: [{ queue: this.quarantineQueue, exchange: this.quarantineExchange, routingKey: '' }],
    });
  }

  /** A queue's arguments with its type: classic queues are declared as before (no x-queue-type), so that existing ones still match. */
  private typed(args: Record<string, unknown>): Record<string, unknown> {
    return this.queueType === 'quorum' ? { ...args, 'x-queue-type': 'quorum' } : args;
  }

  private quarantineDeclaration() {
    return { queue: this.quarantineQueue, durable: true, arguments: this.typed(QUARANTINE_ARGS) };
  }

  /**
   * Declares the quarantine (idempotent) and says plainly why the broker refused it: a queue of this name
   * created with another type or arguments (a switch of RABBITMQ_QUEUE_TYPE on an existing network), or,
   * for quorum queues, a broker older than 3.10 (no message TTL on quorum queues). Called at start.
   */
  async verifyTopology(): Promise<void> {
    const ch = await this.rabbit.acquire();
    try {
      await ch.queueDeclare(this.quarantineDeclaration());
    } catch (err) {
      if (!(err instanceof AMQPChannelError && err.code === 'PRECONDITION_FAILED')) throw err;
      const why = /x-queue-type/.test(err.message)
        ? `it exists with another queue type than RABBITMQ_QUEUE_TYPE=${this.queueType}: queues keep their type; use a new RABBITMQ_PREFIX, or drain and delete the old queues`
        : this.queueType === 'quorum' && /x-message-ttl|invalid arg/.test(err.message)
          ? 'quorum queues need RabbitMQ 3.10 or later (message TTLs carry job deadlines); use RABBITMQ_QUEUE_TYPE=classic on this broker'
          : 'its arguments differ from the ones this version declares';
      throw new Error(`RabbitMQ refused the queue ${this.quarantineQueue}: ${why} (${err.message})`, { cause: err });
    } finally {
      await ch.close();
    }
  }

  queueFor(model: string, priority: PriorityClass): string {
    return `${this.prefix}.jobs.${model}.${priority}`;
  }

  /** Every queue of a model, one per priority class. */
  queuesFor(model: string): string[] {
    return PRIORITY_CLASSES.map((p) => this.queueFor(model, p));
  }

  private exchanges() {
    return [
      { exchange: this.exchange, type: 'direct', durable: true },
      { exchange: this.quarantineExchange, type: 'fanout', durable: true },
    ];
  }

  /** The exchanges, queue and binding a class of a model's jobs needs: one definition for declare, publish and consume. */
  private topology(model: string, priority: PriorityClass) {
    const queue = this.queueFor(model, priority);
    return {
      exchanges: this.exchanges(),
      queue: { queue, durable: true, arguments: this.typed({ 'x-dead-letter-exchange': this.quarantineExchange }) },
      binding: { queue, exchange: this.exchange, routingKey: `${model}.${priority}` },
    };
  }

  /** Declares a model's queues and bindings (idempotent), so a job published before any scheduler consumes it is kept. */
  async declareModel(model: string): Promise<void> {
    const ch = await this.rabbit.acquire();
    try {
      for (const e of this.exchanges()) await ch.exchangeDeclare(e);
      for (const priority of PRIORITY_CLASSES) {
        const t = this.topology(model, priority);
        await ch.queueDeclare(t.queue);
        await ch.queueBind(t.binding);
      }
    } finally {
      await ch.close();
    }
  }

  /** Publishes the job's ticket and waits for the broker's confirm; rejects when the broker did not take the message. */
  async publish(ticket: JobTicket): Promise<void> {
    await this.publisher.send(
      {
        exchange: this.exchange,
        routingKey: `${ticket.placement.model}.${ticket.priority}`,
        durable: true,
        mandatory: true,
        messageId: ticket.jobId,
        expiration: String(Math.max(1, Math.floor(ticket.deadlineAt - Date.now()))),
      },
      ticket,
    );
  }

  /**
   * Empties and deletes the queue a model had before queues were split by priority class
   * (`<prefix>.jobs.<model>`, nothing consumes it any more): each message's job id is handed to
   * `requeue` (which publishes the job again, to its class's queue) before the message is acked, so a
   * crash in between only publishes a job twice, which the scheduler fences. Returns how
   * many messages it moved; 0 at once when there is no such queue.
   */
  async drainLegacyQueue(model: string, requeue: (jobId: string) => Promise<void>): Promise<number> {
    const queue = `${this.prefix}.jobs.${model}`;
    const ch = await this.rabbit.acquire();
    try {
      try {
        await ch.queueDeclare({ queue, passive: true });
      } catch (err) {
        if (err instanceof AMQPChannelError && err.code === 'NOT_FOUND') return 0;
        throw err;
      }
      let moved = 0;
      for (let msg = await ch.basicGet({ queue }); msg; msg = await ch.basicGet({ queue })) {
        const body = msg.body as { jobId?: unknown } | null;
        if (body && typeof body.jobId === 'string') await requeue(body.jobId);
        ch.basicAck({ deliveryTag: msg.deliveryTag });
        moved++;
      }
      await ch.queueDelete({ queue, ifEmpty: true });
      return moved;
    } finally {
      await ch.close();
    }
  }

  async quarantine(jobId: string, reason: string): Promise<void> {
    const body: QuarantineMessage = { jobId, reason };
    await this.publisher.send({ exchange: this.quarantineExchange, routingKey: '', durable: true, messageId: jobId, headers: { 'x-reason': reason } }, body);
  }

  /**
   * Consumes one class of a model's jobs. The handler's promise is the reservation: the message stays
   * unacked until it settles, and a crash before then returns it to the queue for another scheduler.
   */
  consume(model: string, priority: PriorityClass, concurrency: number, handler: (msg: JobMessage, redelivered: boolean) => Promise<void>): JobConsumer {
    const t = this.topology(model, priority);
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
        const body = msg.body as { jobId?: unknown } | null;
        if (!body || typeof body.jobId !== 'string') return ConsumerStatus.DROP; // not ours: to quarantine
        const ticket = jobTicketSchema.safeParse(body);
        await handler({ jobId: body.jobId, ticket: ticket.success ? ticket.data : null }, msg.redelivered);
        return ConsumerStatus.ACK;
      },
    );
  }

  async close(): Promise<void> {
    await this.publisher.close();
  }
}
