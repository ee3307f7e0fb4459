// A namespace's own jobs in Space (issue 10): pins (kept past the plan, metered with extended retention)
// and deletion (DELETE /v1/jobs/{id}: the job's payloads crypto-shredded at once; the job's row, its usage
// and its charge stay, as the ledger needs them).
import type { Logger } from 'pino';
import type { JobRow } from '../postgres/jobs.repository.js';
import type { PinRow } from '../postgres/space.repository.js';
import type { PayloadsRepository } from '../mongo/payloads.repository.js';
import type { PinnedPayloads } from '../mongo/pinned-payloads.js';
import type { ZeroHolds } from '../redis/zero-holds.repository.js';
import { isTerminal } from '../domain/job-states.js';
import { isUuid } from '../domain/wire-strings.js';
import { errors } from '../errors.js';

export interface PinView {
  job_id: string;
  pinned: boolean;
  bytes: number;
}

/**
 * What the service needs from PostgreSQL: the port its fast tests fake (test/fakes/space-jobs.store.ts); on
 * the engine it is postgres/space-jobs.store.ts.
 */
export interface SpaceJobsStore {
  /** The namespace's job, or null: none of that id in it. */
  findJob(namespaceId: string, jobId: string): Promise<JobRow | null>;
  /** Records a pin and its event; false when the job was pinned already. */
  insertPin(namespaceId: string, jobId: string, bytes: number): Promise<boolean>;
  /** Removes a pin and records its event; false when there was none. */
  deletePin(namespaceId: string, jobId: string): Promise<boolean>;
  listPins(namespaceId: string): Promise<PinRow[]>;
  /** All of `fn` or none of it: a job's deletion (its keys, its pin, its event) in one transaction. */
  transaction<T>(fn: (tx: SpaceJobsTx) => Promise<T>): Promise<T>;
}

export interface SpaceJobsTx {
  /** Destroys the job's payload keys (its documents' salts): how many there were. */
  shredPayloadKeys(namespaceId: string, jobId: string): Promise<number>;
  /** Removes the job's pin, if any, recording it as shredded. */
  deletePin(namespaceId: string, jobId: string, kind: 'job_shredded'): Promise<boolean>;
  recordShred(namespaceId: string, jobId: string, documents: number): Promise<void>;
}

/** The MongoDB side: a job's documents as stored, and the namespace's pinned copies. */
export interface SpacePayloadsPort {
  storedDocsOf: PayloadsRepository['storedDocsOf'];
  pinned: Pick<PinnedPayloads, 'pin' | 'unpin'>;
}

export class SpaceJobs {
  constructor(
    private readonly d: {
      store: SpaceJobsStore;
      payloads: SpacePayloadsPort;
      /** False without PAYLOAD_MASTER_KEYS (payloads in clear): deletion then removes the pinned copy only. */
      encrypted: boolean;
      zeroHolds?: Pick<ZeroHolds, 'drop'>;
      logger: Logger;
    },
  ) {}

  private async ownJob(namespaceId: string, jobId: string) {
    if (!isUuid(jobId)) throw errors.jobNotFound(jobId);
    const job = await this.d.store.findJob(namespaceId, jobId);
    if (!job) throw errors.jobNotFound(jobId);
    return job;
  }

  /**
   * Pins a finished job: its documents still held are copied to the namespace's pinned collection, which
   * no expiry drops. Pinning twice is pinning once. Refused when nothing of it is held any more.
   */
  async pin(namespaceId: string, jobId: string): Promise<PinView> {
    const job = await this.ownJob(namespaceId, jobId);
    if (!isTerminal(job.status)) throw errors.conflict('The job has not finished: pin it once it has.', 'job_not_finished');
    const docs = await this.d.payloads.storedDocsOf(jobId, namespaceId);
    if (docs.length === 0) throw errors.conflict('Nothing of this job is held any more (its plan has let it go, or it was never stored): there is nothing to pin.', 'nothing_to_pin');
    const bytes = await this.d.payloads.pinned.pin(namespaceId, jobId, docs);
    await this.d.store.insertPin(namespaceId, jobId, bytes);
    return { job_id: jobId, pinned: true, bytes };
  }

  /** Unpins: the copy goes now; the original, if its plan still holds it, when that plan says. */
  async unpin(namespaceId: string, jobId: string): Promise<PinView> {
    await this.ownJob(namespaceId, jobId);
    const was = await this.d.store.deletePin(namespaceId, jobId);
    if (was) await this.d.payloads.pinned.unpin(namespaceId, jobId);
    return { job_id: jobId, pinned: false, bytes: 0 };
  }

  list(namespaceId: string): Promise<PinRow[]> {
    return this.d.store.listPins(namespaceId);
  }

  /**
   * DELETE /v1/jobs/{id}: a finished job's payloads are made unreadable at once (their keys' salts
   * destroyed: any copy of the documents, anywhere, is ciphertext without a key), before the sweeper drops
   * their bytes with their day; its pin and any zero-plan hold go too. Idempotent.
   */
  async deleteJob(namespaceId: string, jobId: string): Promise<{ id: string; object: 'chat.completion.job.deleted'; deleted: true }> {
    const job = await this.ownJob(namespaceId, jobId);
    if (!isTerminal(job.status)) throw errors.conflict('The job has not finished: cancel it (POST /v1/jobs/{id}/cancel) before deleting it.', 'job_not_finished');
    const shredded = await this.d.store.transaction(async (tx) => {
      const n = this.d.encrypted ? await tx.shredPayloadKeys(namespaceId, jobId) : 0;
      await tx.deletePin(namespaceId, jobId, 'job_shredded');
      await tx.recordShred(namespaceId, jobId, n);
      return n;
    });
    await this.d.payloads.pinned.unpin(namespaceId, jobId);
    await this.d.zeroHolds?.drop(namespaceId, jobId).catch((err: unknown) => this.d.logger.warn({ err, jobId }, 'zero plan hold not dropped (Redis); it goes at its TTL'));
    this.d.logger.info({ jobId, namespaceId, documents: shredded }, 'space: job payloads crypto-shredded');
    return { id: jobId, object: 'chat.completion.job.deleted', deleted: true };
  }
}
