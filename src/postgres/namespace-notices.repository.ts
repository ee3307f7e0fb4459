// A namespace's notices for its owner (migration 0025): what happened to it that the owner did not ask for
// and should know, such as a webhook endpoint disabled after persistent failure. Written by the statement
// that caused them (webhooks.repository.ts recordAttempt); listed by the account API and the CLI.
import type { Queryable } from './db.js';

export interface NamespaceNoticeRow {
  id: string;
  at: Date;
  kind: 'webhook_endpoint_disabled';
  subject: string;
  message: string;
  detail: Record<string, unknown>;
}

/** Newest first. */
export async function listNamespaceNotices(q: Queryable, namespaceId: string, limit: number): Promise<NamespaceNoticeRow[]> {
  const r = await q.query<NamespaceNoticeRow>(
    `SELECT id::text, at, kind, subject, message, detail FROM namespace_notices WHERE namespace_id = $1 ORDER BY at DESC, id DESC LIMIT $2`,
    [namespaceId, limit],
  );
  return r.rows;
}
