// Operators' earnings by node and day, and their withdrawals (migrations/0007).
import type { Queryable } from './db.js';

export interface NodeEarningsRow {
  /** Null for captures whose job has left the live window (its raw row dropped, migrations/0011). */
  node_id: string | null;
  day: string; // YYYY-MM-DD, UTC
  jobs: number;
  earned_micro: number;
}

/** What an operator earned per node and day: its share of each capture, by the node that ran the job. */
export async function earningsByNodeAndDay(q: Queryable, operatorAccountId: string, from: Date, to: Date): Promise<NodeEarningsRow[]> {
  const r = await q.query<NodeEarningsRow>(
    `SELECT j.node_id, to_char(date_trunc('day', t.created_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD') AS day,
            count(*)::int AS jobs, sum(e.amount)::bigint AS earned_micro
       FROM ledger_accounts a
       JOIN ledger_entries e ON e.account_id = a.id
       JOIN ledger_transactions t ON t.id = e.txn_id AND t.kind = 'capture'
       LEFT JOIN jobs j ON j.id = t.job_id AND j.created_at = coalesce(job_id_time(t.job_id), j.created_at) -- LEFT: earnings outlive the raw job rows; the id's time names the partition
      WHERE a.kind = 'operator_earnings' AND a.owner_id = $1 AND t.created_at >= $2 AND t.created_at < $3
      GROUP BY j.node_id, 2 ORDER BY 2, j.node_id`,
    [operatorAccountId, from, to],
  );
  return r.rows;
}

export interface WithdrawalRow {
  id: string;
  operator_account_id: string;
  amount_micro: number;
  destination: string;
  status: 'requested' | 'exported';
  created_at: Date;
  exported_at: Date | null;
}

const COLUMNS = `id, operator_account_id, amount_micro, destination, status, created_at, exported_at`;

export async function insertWithdrawal(q: Queryable, w: { operatorAccountId: string; amountMicro: number; destination: string; ledgerTxnId: number }): Promise<WithdrawalRow> {
  const r = await q.query<WithdrawalRow>(
    `INSERT INTO withdrawals (operator_account_id, amount_micro, destination, ledger_txn_id) VALUES ($1, $2, $3, $4) RETURNING ${COLUMNS}`,
    [w.operatorAccountId, w.amountMicro, w.destination, w.ledgerTxnId],
  );
  return r.rows[0]!;
}

/** Marks every requested withdrawal exported and returns them, oldest first: one export, one batch. */
export async function exportRequestedWithdrawals(q: Queryable): Promise<WithdrawalRow[]> {
  const r = await q.query<WithdrawalRow>(
    `UPDATE withdrawals SET status = 'exported', exported_at = now() WHERE status = 'requested' RETURNING ${COLUMNS}`,
  );
  return r.rows.sort((a, b) => a.created_at.getTime() - b.created_at.getTime());
}

/** Serializes an operator's withdrawals: their earnings balance is derived, so there is no row to lock. */
export async function lockOperator(q: Queryable, operatorAccountId: string): Promise<void> {
  await q.query(`SELECT pg_advisory_xact_lock(hashtextextended('withdrawal:' || $1, 0))`, [operatorAccountId]);
}

/** An operator's withdrawal requests, newest first. */
export async function listWithdrawals(q: Queryable, operatorAccountId: string, limit: number): Promise<WithdrawalRow[]> {
  const r = await q.query<WithdrawalRow>(
    `SELECT ${COLUMNS} FROM withdrawals WHERE operator_account_id = $1 ORDER BY created_at DESC, id LIMIT $2`,
    [operatorAccountId, limit],
  );
  return r.rows;
}
