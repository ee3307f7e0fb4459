// One model's waiting room in one scheduler process. Every job of the model that this process holds
// (delivered by RabbitMQ, not yet placed) waits here for a node; one loop (the pump) offers each free
// slot to the waiting jobs in fair order (fair-queue.ts) and reserves it in Redis for the first job that
// can use it. Placing jobs through one loop, their reservations sent in fair order on one connection, is
// what makes the order hold: before, every waiting job raced for each freed slot and the winner was
// whoever's Redis call landed first.
//
// A job that cannot use the free node (another network, region or subcloud) does not block the others:
// the pump tries the next job of another "shape" (the placement the reservation checks), a bounded number
// per round.
import type { Logger } from 'pino';
import type { Placement } from '../domain/eligibility.js';
import type { AttemptClaim, Reservation } from '../redis/presence.repository.js';
import { FairQueue, type FairEntry } from './fair-queue.js';

export interface PlacementRequest extends FairEntry {
  /** Where the job may run (network, model, region, subcloud). */
  placement: Placement;
  /** The placement as a key: jobs of one shape fit exactly the same nodes. */
  shape: string;
  /** Nodes the job has failed on, tried last. */
  exclude: readonly string[];
  /** The attempt the reservation starts. */
  claim: AttemptClaim;
}

/** A reservation, or 'fenced': the attempt is not the job's next one (another scheduler runs it, or the job ended). */
export type Placed = Reservation | 'fenced';

interface Ticket extends PlacementRequest {
  resolve(r: Placed | null): void;
  timer: NodeJS.Timeout;
}

export interface ModelDispatcherDeps {
  model: string;
  /** Reserves a slot for the job on a node it may use, or returns null. */
  reserve(request: PlacementRequest): Promise<Placed | null>;
  /** Gives back a slot (and the attempt it started) reserved for a job that left before it was handed over. */
  release(reservation: Placed, request: PlacementRequest): Promise<void>;
  /** Resolves when a slot of the model is announced free, after `timeoutMs`, or on abort. */
  waitForCapacity(timeoutMs: number, signal: AbortSignal): Promise<void>;
  stopping: AbortSignal;
  logger: Logger;
}

/** When no waiting job fits a free node, look again after this long even if no freed slot was announced (a lost pub/sub message costs only this). */
const BUSY_RECHECK_MS = 200;
/** Waiting jobs that ask for a slot together in one round (see offerFreeSlot). */
const PLACE_PER_ROUND = 16;
/** Distinct shapes tried per free-slot round, and jobs looked at to find them. */
const SHAPES_PER_ROUND = 8;
const SCAN_PER_ROUND = 256;
const ENGINE_ERROR_PAUSE_MS = 1_000;

export class ModelDispatcher {
  private readonly waiting = new FairQueue<Ticket>();
  private pumping = false;
  /** Aborted to wake the pump early: a job of a shape not tried in the last round arrived. */
  private wake = new AbortController();
  /** Shapes that found no node in the last round; a new job of one of these need not wake the pump. */
  private blockedShapes = new Set<string>();

  constructor(private readonly d: ModelDispatcherDeps) {}

  get size(): number {
    return this.waiting.size;
  }

  /**
   * Waits for this job's turn at a free node. Resolves with the reservation, or with null after
   * `maxWaitMs` (the caller re-checks its deadline and whether any node serves the model, then waits again
   * with the same arrival time, so it keeps its place) or when the scheduler stops.
   */
  place(request: PlacementRequest, maxWaitMs: number): Promise<Placed | null> {
    if (this.d.stopping.aborted) return Promise.resolve(null);
    return new Promise((resolve) => {
      const ticket: Ticket = {
        ...request,
        resolve,
        timer: setTimeout(() => {
          if (this.waiting.remove(ticket)) resolve(null);
        }, maxWaitMs),
      };
      this.waiting.add(ticket);
      if (!this.blockedShapes.has(ticket.shape)) this.wake.abort();
      this.pump();
    });
  }

  /** Hands every waiting job back with null (the scheduler is stopping; their messages are requeued). */
  close(): void {
    for (const t of this.waiting.all()) {
      this.waiting.remove(t);
      clearTimeout(t.timer);
      t.resolve(null);
    }
  }

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    this.run()
      .catch((err: unknown) => this.d.logger.error({ err, model: this.d.model }, 'dispatcher: pump failed'))
      .finally(() => {
        this.pumping = false;
        // A job may have arrived between the loop's last check and here.
        if (this.waiting.size > 0 && !this.d.stopping.aborted) this.pump();
      });
  }

  private async run(): Promise<void> {
    while (this.waiting.size > 0 && !this.d.stopping.aborted) {
      const wake = (this.wake = new AbortController());
      let placed: boolean;
      try {
        placed = await this.offerFreeSlot();
      } catch (err) {
        // Redis failed: the waiting jobs time out and their handlers see the failure themselves.
        this.d.logger.warn({ err, model: this.d.model }, 'dispatcher: reservation failed; pausing');
        await this.d.waitForCapacity(ENGINE_ERROR_PAUSE_MS, this.d.stopping);
        continue;
      }
      if (!placed && !wake.signal.aborted) await this.d.waitForCapacity(BUSY_RECHECK_MS, AbortSignal.any([wake.signal, this.d.stopping]));
    }
  }

  /**
   * Offers free slots to the waiting jobs in fair order; true when a job got one. The first
   * PLACE_PER_ROUND jobs of the order, and the first job of each further shape (up to SHAPES_PER_ROUND
   * shapes, so that jobs no node suits do not block the others), ask at once: their reservations leave
   * together, in that order, on one Redis connection, which runs them in that order, so the slots go as
   * they would one at a time, at the cost of one round trip instead of one each.
   */
  private async offerFreeSlot(): Promise<boolean> {
    const batch: Ticket[] = [];
    const shapes = new Set<string>();
    let scanned = 0;
    for (const ticket of this.waiting.order()) {
      if (++scanned > SCAN_PER_ROUND) break;
      if (batch.length < PLACE_PER_ROUND || (!shapes.has(ticket.shape) && shapes.size < SHAPES_PER_ROUND)) {
        batch.push(ticket);
        shapes.add(ticket.shape);
      } else if (shapes.size >= SHAPES_PER_ROUND) {
        break;
      }
    }
    const reservations = await Promise.allSettled(batch.map((ticket) => this.d.reserve(ticket)));
    const served = new Set<string>();
    let failure: unknown = null;
    for (const [i, outcome] of reservations.entries()) {
      const ticket = batch[i]!;
      if (outcome.status === 'rejected') {
        failure ??= outcome.reason;
        continue;
      }
      const reservation = outcome.value;
      if (!reservation) continue;
      served.add(ticket.shape);
      if (this.waiting.has(ticket)) {
        this.waiting.taken(ticket);
        clearTimeout(ticket.timer);
        ticket.resolve(reservation);
      } else {
        // The job stopped waiting while its reservation was in flight: the slot goes back.
        await this.d.release(reservation, ticket);
      }
    }
    if (served.size > 0) {
      this.blockedShapes.clear();
      return true;
    }
    if (failure !== null) throw failure instanceof Error ? failure : new Error("reservation failed", { cause: failure });
    this.blockedShapes = shapes;
    return false;
  }
}
