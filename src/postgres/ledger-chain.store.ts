// The ledger chain service's store (maintenance/ledger-chain.service.ts LedgerChainStore) on PostgreSQL:
// the repository functions bound to the pool, and to one REPEATABLE READ transaction inside `snapshot`.
// It matches the port by shape (checked where the service is built, src/admin-services.ts), so this
// engine folder need not import the service's.
import type { LedgerEntryRecord, LedgerRollupRow } from '../domain/ledger-chain.js';
import { withTransaction, type Db, type Tx } from './db.js';
import {
  computeLedgerRollup,
  firstLedgerDay,
  forEachLedgerEntry,
  insertLedgerDay,
  lastLedgerDay,
  listLedgerDays,
  openTransactionsStartedBefore,
  storedLedgerRollup,
  type LedgerDayRow,
} from './ledger-history.repository.js';

export function ledgerChainStore(db: Db) {
  const inTransaction = (tx: Tx) => ({
    computeLedgerRollup: (day: string) => computeLedgerRollup(tx, day),
    forEachLedgerEntry: (day: string, each: (e: LedgerEntryRecord) => void) => forEachLedgerEntry(tx, day, each),
    insertLedgerDay: (d: LedgerDayRow, rows: readonly LedgerRollupRow[]) => insertLedgerDay(tx, d, rows),
  });
  return {
    firstLedgerDay: () => firstLedgerDay(db),
    lastLedgerDay: () => lastLedgerDay(db),
    listLedgerDays: () => listLedgerDays(db),
    openTransactionsStartedBefore: (t: Date) => openTransactionsStartedBefore(db, t),
    storedLedgerRollup: (day: string) => storedLedgerRollup(db, day),
    snapshot: <T>(fn: (tx: ReturnType<typeof inTransaction>) => Promise<T>, opts: { readOnly: boolean }) =>
      withTransaction(db, (tx) => fn(inTransaction(tx)), { isolation: 'snapshot', readOnly: opts.readOnly }),
  };
}
