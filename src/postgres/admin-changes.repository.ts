// The admin change log (migration 0017): who changed what in the network's state, when, with the value
// before and after. Append-only. Callers write an entry in the same transaction as the change it
// records, so the log holds every committed change and no change that rolled back.
import type { Queryable } from './db.js';

/** The actor of changes no person asked for: the genesis config, test and demo set-ups, internal callers. */
export const SYSTEM_ACTOR = 'system';

export interface AdminChange {
  /** Who: `admin-api` (or `admin-api:<name>` from the X-Admin-Actor header), `cli:<user>`, `system`. */
  actor: string;
  /** What, as `<thing>.<verb>`: model.put, subcloud.create, node_flags.set, network_config.publish... */
  action: string;
  /** Which one: a model name, subcloud name, node id, config version... */
  subject: string;
  /** The state before (null: it did not exist) and after (null: it no longer does); JSON values. */
  before: unknown;
  after: unknown;
}

export interface AdminChangeRow {
  id: number;
  at: Date;
  actor: string;
  action: string;
  subject: string;
  before: unknown;
  after: unknown;
}

export async function recordAdminChange(q: Queryable, c: AdminChange): Promise<void> {
  await q.query(`INSERT INTO admin_changes (actor, action, subject, before, after) VALUES ($1, $2, $3, $4, $5)`, [
    c.actor.slice(0, 200),
    c.action,
    c.subject.slice(0, 300),
    c.before === null || c.before === undefined ? null : JSON.stringify(c.before),
    c.after === null || c.after === undefined ? null : JSON.stringify(c.after),
  ]);
}

/** Entries newest first, optionally of one action and/or subject, older than `beforeId` (paging). */
export async function listAdminChanges(
  q: Queryable,
  f: { limit: number; action?: string; subject?: string; beforeId?: number },
): Promise<AdminChangeRow[]> {
  const r = await q.query<AdminChangeRow>(
    `SELECT id, at, actor, action, subject, before, after FROM admin_changes
      WHERE ($2::text IS NULL OR action = $2) AND ($3::text IS NULL OR subject = $3) AND ($4::bigint IS NULL OR id < $4)
      ORDER BY id DESC LIMIT $1`,
    [f.limit, f.action ?? null, f.subject ?? null, f.beforeId ?? null],
  );
  return r.rows;
}
