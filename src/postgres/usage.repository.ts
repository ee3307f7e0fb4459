// Usage per namespace by day (UTC), model and API key: from the daily job rollups for rolled-up days, and
// from the raw job rows for the others (src/space/usage.service.ts puts the two together).
import type { Queryable } from './db.js';

export interface UsageRow {
  day: string; // YYYY-MM-DD, UTC
  model: string;
  api_key_id: string;
  key_prefix: string;
  requests: number;
  completed: number;
  failed: number;
  expired: number;
  prompt_tokens: number;
  completion_tokens: number;
  charged_micro: number;
}

/** Jobs created in [from, to) in the namespace, from the raw rows, grouped by day, model and key. */
export async function usageFromJobs(q: Queryable, namespaceId: string, from: Date, to: Date): Promise<UsageRow[]> {
  const r = await q.query<UsageRow>(
    `SELECT to_char(date_trunc('day', j.created_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD') AS day,
            j.model, j.api_key_id, k.key_prefix,
            count(*)::int AS requests,
            count(*) FILTER (WHERE j.status = 'completed')::int AS completed,
            count(*) FILTER (WHERE j.status = 'failed')::int AS failed,
            count(*) FILTER (WHERE j.status = 'expired')::int AS expired,
            coalesce(sum(j.prompt_tokens), 0)::bigint AS prompt_tokens,
            coalesce(sum(j.completion_tokens), 0)::bigint AS completion_tokens,
            coalesce(sum(j.charged_micro), 0)::bigint AS charged_micro
       FROM jobs j JOIN api_keys k ON k.id = j.api_key_id
      WHERE j.namespace_id = $1 AND j.created_at >= $2 AND j.created_at < $3
      GROUP BY 1, j.model, j.api_key_id, k.key_prefix`,
    [namespaceId, from, to],
  );
  return r.rows;
}

/** The same figures from the rollups of days `fromDay` to `toDay` (YYYY-MM-DD, inclusive). */
export async function usageFromRollups(q: Queryable, namespaceId: string, fromDay: string, toDay: string): Promise<UsageRow[]> {
  const r = await q.query<UsageRow>(
    `SELECT to_char(r.day, 'YYYY-MM-DD') AS day, r.model, r.api_key_id, k.key_prefix,
            sum(r.jobs)::int AS requests,
            coalesce(sum(r.jobs) FILTER (WHERE r.status = 'completed'), 0)::int AS completed,
            coalesce(sum(r.jobs) FILTER (WHERE r.status = 'failed'), 0)::int AS failed,
            coalesce(sum(r.jobs) FILTER (WHERE r.status = 'expired'), 0)::int AS expired,
            sum(r.prompt_tokens)::bigint AS prompt_tokens,
            sum(r.completion_tokens)::bigint AS completion_tokens,
            sum(r.charged_micro)::bigint AS charged_micro
       FROM job_rollups r JOIN api_keys k ON k.id = r.api_key_id
      WHERE r.namespace_id = $1 AND r.day BETWEEN $2::date AND $3::date
      GROUP BY r.day, r.model, r.api_key_id, k.key_prefix`,
    [namespaceId, fromDay, toDay],
  );
  return r.rows;
}
