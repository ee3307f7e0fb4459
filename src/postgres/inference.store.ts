// The job acceptance's reads (cloud/inference.service.ts InferenceStore) on PostgreSQL, bound to the pool
// once (no closure per request on the hot path). It matches the port by shape (checked where the service
// is built, src/app.ts), so this engine folder need not import the service's.
import type { Queryable } from './db.js';
import { findIdempotencyKey } from './idempotency.repository.js';
import { findJob, findJobInNamespace } from './jobs.repository.js';

export function inferenceStore(db: Queryable) {
  return {
    findJob: (id: string) => findJob(db, id),
    findJobInNamespace: (id: string, namespaceId: string) => findJobInNamespace(db, id, namespaceId),
    findIdempotencyKey: (namespaceId: string, key: string, windowHours: number) => findIdempotencyKey(db, namespaceId, key, windowHours),
  };
}
