// Periodic tasks that must run once across any number of instances take a PostgreSQL advisory lock
// first; an instance that does not get it skips that run. The lock is transaction-scoped, held by an
// otherwise idle transaction on a dedicated pool client while the task runs on other connections: it is
// released at commit, or by the server when the client's connection or process dies, so a crashed
// instance never leaves it held. The tasks stay idempotent and guarded by constraints all the same:
// the lock spares duplicate work, the constraints keep a lost lock from doing harm.
import { withTransaction, type Db, type Tx } from './db.js';

/** Arbitrary constants naming our locks among PostgreSQL advisory locks. */
export const ADVISORY_LOCKS = {
  /** The frequent sweeps (outbox, deadlines, idempotency keys, flags, uptime, payloads). */
  maintenance: 0x5245_5355, // "RESU"
  /** Job history and ledger rollups: partitions, rollups, drops, the ledger chain. */
  history: 0x5245_5348, // "RESH"
  /** Node quality: blind-job verdicts and submissions, scores. */
  quality: 0x5245_5351, // "RESQ"
  /** Publishing a network config version (and making the genesis one): one publisher at a time. */
  networkConfig: 0x5245_534e, // "RESN"
  /**
   * Creating a namespace's webhook endpoint (count, then insert, under its limit): the first key of a
   * two-key lock whose second is the namespace id's hash (two-key locks never collide with the one-key ones above).
   */
  webhookEndpoints: 0x5245_5357, // "RESW"
} as const;

/** Runs `fn` if this instance gets the lock; `{ ran: false }` when another one holds it. */
export async function runExclusive<T>(db: Db, lock: number, fn: () => Promise<T>): Promise<{ ran: true; value: T } | { ran: false }> {
  return withTransaction(db, async (tx) => {
    const r = await tx.query<{ ok: boolean }>(`SELECT pg_try_advisory_xact_lock($1) AS ok`, [lock]);
    if (!r.rows[0]?.ok) return { ran: false as const };
    return { ran: true as const, value: await fn() };
  });
}

/** Runs `fn` in a transaction that first waits for the lock (held until commit): one holder at a time. */
export async function withTransactionLock<T>(db: Db, lock: number, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return withTransaction(db, async (tx) => {
    await tx.query(`SELECT pg_advisory_xact_lock($1)`, [lock]);
    return fn(tx);
  });
}
