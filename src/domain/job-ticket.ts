// A job ticket: everything the roles downstream of accept need to run and settle a job, carried with the
// job from the cloud instance that accepted it (in its RabbitMQ message) to the scheduler, and from the
// scheduler to the io gateway holding the node (beside the signed dispatch). With it the scheduler never
// reads the job's row or its input back, and the gateway settles a result without reading the row: the
// job's row in PostgreSQL stays the authority (settlement is fenced there), the ticket only saves the
// round trips of reading it.
//
// Internal only: tickets travel over the backbone's own RabbitMQ and Redis, never to nodes or clients.
import { z } from 'zod';
import { jobRequestSchema, type JobRequest } from './protocol.js';
import type { ModelPrices } from './pricing.js';
import { PRIORITY_CLASSES, type PriorityClass } from './priority.js';
import { networkSchema, type Placement } from './eligibility.js';

/** The prices a job was accepted under and its hold: what its charge is computed from. */
export interface JobTerms extends ModelPrices {
  holdMicro: number;
}

export interface JobTicket {
  jobId: string;
  namespaceId: string;
  priority: PriorityClass;
  placement: Placement;
  /** Epoch milliseconds. */
  deadlineAt: number;
  maxAttempts: number;
  /** Per attempt; null: the environment's JOB_ATTEMPT_TIMEOUT_MS. */
  attemptTimeoutMs: number | null;
  terms: JobTerms;
  request: JobRequest;
}

const micro = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

export const jobTicketSchema = z.object({
  jobId: z.string().uuid(),
  namespaceId: z.string().uuid(),
  priority: z.enum(PRIORITY_CLASSES),
  placement: z.object({ network: networkSchema, model: z.string().min(1), region: z.string().nullable(), subcloud: z.string().nullable() }),
  deadlineAt: z.number().int().positive(),
  maxAttempts: z.number().int().positive(),
  attemptTimeoutMs: z.number().int().positive().nullable(),
  terms: z.object({
    holdMicro: micro,
    inputPriceMicro: micro,
    outputPriceMicro: micro,
    minChargeMicro: micro,
    surchargeBps: z.number().int(),
  }),
  request: jobRequestSchema,
}) satisfies z.ZodType<JobTicket>;

/** The columns of a job row a ticket is made of (postgres/jobs.repository.ts JobRow). */
export interface TicketRow {
  id: string;
  namespace_id: string;
  model: string;
  priority: PriorityClass;
  network: string;
  region: string | null;
  subcloud: string | null;
  deadline_at: Date;
  max_attempts: number;
  attempt_timeout_ms: number | null;
  hold_micro: number;
  input_price_micro: number;
  output_price_micro: number;
  min_charge_micro: number;
  surcharge_bps: number;
}

export function ticketOf(row: TicketRow, request: JobRequest): JobTicket {
  return {
    jobId: row.id,
    namespaceId: row.namespace_id,
    priority: row.priority,
    placement: { network: networkSchema.parse(row.network), model: row.model, region: row.region, subcloud: row.subcloud },
    deadlineAt: row.deadline_at.getTime(),
    maxAttempts: row.max_attempts,
    attemptTimeoutMs: row.attempt_timeout_ms,
    terms: termsOf(row),
    request,
  };
}

export function termsOf(row: Pick<TicketRow, 'hold_micro' | 'input_price_micro' | 'output_price_micro' | 'min_charge_micro' | 'surcharge_bps'>): JobTerms {
  return {
    holdMicro: row.hold_micro,
    inputPriceMicro: row.input_price_micro,
    outputPriceMicro: row.output_price_micro,
    minChargeMicro: row.min_charge_micro,
    surchargeBps: row.surcharge_bps,
  };
}
