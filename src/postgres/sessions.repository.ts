// Sessions of the account API (migrations/0010): a row per sign-in, found by the SHA-256 of its token.
// Checked in PostgreSQL on every request (the account API is low-volume), so a log-out takes effect at
// once everywhere, with no cache to forget.
import type { Queryable } from './db.js';

export type SignInMethod = 'password' | 'siwe';

export interface SessionRow {
  id: string;
  account_id: string;
  method: SignInMethod;
  created_at: Date;
  expires_at: Date;
}

export async function insertSession(q: Queryable, s: { accountId: string; tokenHash: Buffer; method: SignInMethod; ttlHours: number }): Promise<SessionRow> {
  const r = await q.query<SessionRow>(
    `INSERT INTO account_sessions (account_id, token_hash, method, expires_at) VALUES ($1, $2, $3, now() + make_interval(hours => $4))
     RETURNING id, account_id, method, created_at, expires_at`,
    [s.accountId, s.tokenHash, s.method, s.ttlHours],
  );
  return r.rows[0]!;
}

/** The live (unexpired, unrevoked) session with this token hash. */
export async function findLiveSession(q: Queryable, tokenHash: Buffer): Promise<SessionRow | null> {
  const r = await q.query<SessionRow>(
    `SELECT id, account_id, method, created_at, expires_at FROM account_sessions
      WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > now()`,
    [tokenHash],
  );
  return r.rows[0] ?? null;
}

export async function revokeSession(q: Queryable, id: string): Promise<void> {
  await q.query(`UPDATE account_sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL`, [id]);
}

/**
 * Deletes an account's expired and revoked sessions. Run at each sign-in, it keeps the table bounded by
 * the sessions accounts actually hold, without a periodic sweep over every account.
 */
export async function pruneSessions(q: Queryable, accountId: string): Promise<void> {
  await q.query(`DELETE FROM account_sessions WHERE account_id = $1 AND (revoked_at IS NOT NULL OR expires_at <= now())`, [accountId]);
}
