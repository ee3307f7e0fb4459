// Usage per namespace by day (UTC), model and API key, from the job rows. (When job history is rolled up
// and raw partitions dropped, this reads the rollups plus the live window; the report's shape stays.)
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

/** Jobs created in [from, to) in the namespace, grouped by day, model and key, oldest day first. */
export async function usageByDayModelKey(q: Queryable, namespaceId: string, from: Date, to: Date): Promise<UsageRow[]> {
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
      GROUP BY 1, j.model, j.api_key_id, k.key_prefix
      ORDER BY 1, j.model, k.key_prefix`,
    [namespaceId, from, to],
  );
  return r.rows;
}
