// A namespace's recent jobs, for its owner's console (account API). Read-only; the node that ran a job is
// never selected here: consumers never learn which node served them (DESIGN.md, invariant 4).
import type { JobStatus } from '../domain/job-states.js';
import type { PriorityClass } from '../domain/priority.js';
import type { Queryable } from './db.js';

export interface NamespaceJobRow {
  id: string;
  api_key_id: string;
  model: string;
  status: JobStatus;
  priority: PriorityClass;
  attempt: number;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  hold_micro: number;
  charged_micro: number | null;
  error_code: string | null;
  created_at: Date;
  finished_at: Date | null;
}

/**
 * The namespace's newest jobs, newest first, among those created since `since` (the bound keeps the scan
 * to the live window's day partitions, through jobs_namespace_created on each).
 */
export async function listRecentJobs(q: Queryable, namespaceId: string, since: Date, limit: number): Promise<NamespaceJobRow[]> {
  const r = await q.query<NamespaceJobRow>(
    `SELECT id, api_key_id, model, status, priority, attempt, prompt_tokens, completion_tokens, hold_micro,
            charged_micro, error_code, created_at, finished_at
       FROM jobs WHERE namespace_id = $1 AND created_at >= $2
      ORDER BY created_at DESC, id DESC LIMIT $3`,
    [namespaceId, since, limit],
  );
  return r.rows;
}
