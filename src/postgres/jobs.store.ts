// Job rows as the job flow's services take them, on PostgreSQL: the repository functions bound to the
// pool, matching by shape the ports of jobs/lifecycle.service.ts (JobLifecycleStore),
// scheduler/scheduler.service.ts (SchedulerStore) and io/results.service.ts (ResultsStore), each of which
// takes the operations it needs (checked where they are built, src/app.ts). Built once per pool, so that a
// call costs what the repository function costs: no closure per job, no added round trip.
import type { Db } from './db.js';
import { failAttempt, findJob, markPublished } from './jobs.repository.js';
import { streamedAttempt } from './job-streams.repository.js';
import { listModels } from './models.repository.js';

export function jobsStore(db: Db) {
  return {
    findJob: (jobId: string) => findJob(db, jobId),
    streamedAttempt: (jobId: string) => streamedAttempt(db, jobId),
    failAttempt: (a: Parameters<typeof failAttempt>[1]) => failAttempt(db, a),
    markPublished: (marks: Parameters<typeof markPublished>[1]) => markPublished(db, marks),
    listModels: () => listModels(db),
  };
}
