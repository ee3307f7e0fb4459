// The stream relay's store (cloud/stream-relay.service.ts StreamRelayStore) on PostgreSQL, bound to the
// pool once. It matches the port by shape (checked where the relay is built, src/app.ts).
import type { Queryable } from './db.js';
import { commitStreamedAttempt } from './job-streams.repository.js';
import { findJob } from './jobs.repository.js';

export function streamRelayStore(db: Queryable) {
  return {
    findJob: (id: string) => findJob(db, id),
    commitStreamedAttempt: (jobId: string, attempt: number) => commitStreamedAttempt(db, jobId, attempt),
  };
}
