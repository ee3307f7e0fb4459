// In-memory SpaceJobsStore and payload store (space/space-jobs.service.ts) for the service's fast tests.
import type { JobRow } from '../../src/postgres/jobs.repository.js';
import type { PinRow } from '../../src/postgres/space.repository.js';
import type { SpaceJobsStore, SpaceJobsTx, SpacePayloadsPort } from '../../src/space/space-jobs.service.js';
import { FakeDatabase } from './fake-database.js';

export class FakeSpaceJobsStore implements SpaceJobsStore {
  readonly db = new FakeDatabase({
    jobs: new Map<string, Pick<JobRow, 'id' | 'namespace_id' | 'status'>>(),
    pins: new Map<string, { namespaceId: string; row: PinRow }>(),
    /** job id -> how many payload keys (salts) it has */
    payloadKeys: new Map<string, number>(),
    /** Space events as the owner sees them: kind and job. */
    events: [] as Array<{ namespaceId: string; kind: string; jobId: string; documents?: number }>,
  });

  addJob(namespaceId: string, jobId: string, status: JobRow['status'], payloadKeys = 0): void {
    this.db.state.jobs.set(jobId, { id: jobId, namespace_id: namespaceId, status });
    if (payloadKeys > 0) this.db.state.payloadKeys.set(jobId, payloadKeys);
  }

  findJob(namespaceId: string, jobId: string): Promise<JobRow | null> {
    this.db.call('findJob');
    const job = this.db.state.jobs.get(jobId);
    return Promise.resolve(job && job.namespace_id === namespaceId ? (job as JobRow) : null);
  }

  insertPin(namespaceId: string, jobId: string, bytes: number): Promise<boolean> {
    this.db.call('insertPin');
    if (this.db.state.pins.has(jobId)) return Promise.resolve(false);
    this.db.state.pins.set(jobId, { namespaceId, row: { job_id: jobId, pinned_at: new Date(), bytes } });
    this.db.state.events.push({ namespaceId, kind: 'pinned', jobId });
    return Promise.resolve(true);
  }

  deletePin(namespaceId: string, jobId: string, kind: 'unpinned' | 'job_shredded' = 'unpinned'): Promise<boolean> {
    this.db.call('deletePin');
    const pin = this.db.state.pins.get(jobId);
    if (!pin || pin.namespaceId !== namespaceId) return Promise.resolve(false);
    this.db.state.pins.delete(jobId);
    this.db.state.events.push({ namespaceId, kind, jobId });
    return Promise.resolve(true);
  }

  listPins(namespaceId: string): Promise<PinRow[]> {
    this.db.call('listPins');
    return Promise.resolve([...this.db.state.pins.values()].filter((p) => p.namespaceId === namespaceId).map((p) => p.row));
  }

  transaction<T>(fn: (tx: SpaceJobsTx) => Promise<T>): Promise<T> {
    return this.db.transaction(() =>
      fn({
        shredPayloadKeys: (namespaceId, jobId) => {
          this.db.call('shredPayloadKeys');
          const job = this.db.state.jobs.get(jobId);
          const n = job?.namespace_id === namespaceId ? (this.db.state.payloadKeys.get(jobId) ?? 0) : 0;
          if (n > 0) this.db.state.payloadKeys.delete(jobId);
          return Promise.resolve(n);
        },
        deletePin: (namespaceId, jobId, kind) => this.deletePin(namespaceId, jobId, kind),
        recordShred: (namespaceId, jobId, documents) => {
          this.db.call('recordShred');
          this.db.state.events.push({ namespaceId, kind: 'job_shredded', jobId, documents });
          return Promise.resolve();
        },
      }),
    );
  }
}

/** The MongoDB side: each job's stored documents (by byte size) and the namespace's pinned copies. */
export class FakeSpacePayloads implements SpacePayloadsPort {
  /** job id -> its documents still held, as storedDocsOf answers */
  readonly stored = new Map<string, Array<{ from: 'job_payloads' | 'job_results'; doc: { _id: string; bytes?: number } }>>();
  /** job id -> the bytes of its pinned copy */
  readonly copies = new Map<string, number>();

  storedDocsOf(jobId: string): ReturnType<SpacePayloadsPort['storedDocsOf']> {
    return Promise.resolve(this.stored.get(jobId) ?? []);
  }

  readonly pinned: SpacePayloadsPort['pinned'] = {
    pin: (_namespaceId, jobId, docs) => {
      const bytes = docs.reduce((n, d) => n + (d.doc.bytes ?? 0), 0);
      this.copies.set(jobId, bytes);
      return Promise.resolve(bytes);
    },
    unpin: (_namespaceId, jobId) => {
      const had = this.copies.delete(jobId);
      return Promise.resolve(had ? 1 : 0);
    },
  };
}
