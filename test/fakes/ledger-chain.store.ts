// In-memory LedgerChainStore (maintenance/ledger-chain.service.ts) for the service's fast tests: the
// ledger's entries by UTC day, the chained days and their stored rollup rows.
import type { LedgerEntryRecord, LedgerRollupRow } from '../../src/domain/ledger-chain.js';
import type { LedgerChainStore, LedgerChainTx } from '../../src/maintenance/ledger-chain.service.js';
import type { LedgerDayRow } from '../../src/postgres/ledger-history.repository.js';
import { FakeDatabase } from './fake-database.js';

export class FakeLedgerChainStore implements LedgerChainStore {
  readonly db = new FakeDatabase({
    /** Entries by the UTC day of their transaction, in entry-id order. */
    entries: new Map<string, LedgerEntryRecord[]>(),
    days: [] as LedgerDayRow[],
    rollups: new Map<string, LedgerRollupRow[]>(),
  });
  /** When set, a transaction that started before this time is still open. */
  openTransactionSince: Date | null = null;
  private nextId = 1;

  /** One balanced transfer of `amount` from account `from` to account `to` at `at` (ISO, UTC). */
  addTransfer(at: string, from: number, to: number, amount: number): void {
    const day = at.slice(0, 10);
    const txn = this.nextId;
    const list = this.db.state.entries.get(day) ?? [];
    for (const [account_id, a] of [[from, -amount], [to, amount]] as const) {
      list.push({ id: this.nextId++, txn_id: txn, kind: 'topup', job_id: null, memo: '', created_at: at.replace(/Z$/, '000Z'), account_id, amount: a });
    }
    this.db.state.entries.set(day, list);
  }

  firstLedgerDay(): Promise<string | null> {
    this.db.call('firstLedgerDay');
    return Promise.resolve([...this.db.state.entries.keys()].sort()[0] ?? null);
  }

  lastLedgerDay(): Promise<LedgerDayRow | null> {
    this.db.call('lastLedgerDay');
    return Promise.resolve(this.db.state.days.at(-1) ?? null);
  }

  listLedgerDays(): Promise<LedgerDayRow[]> {
    this.db.call('listLedgerDays');
    return Promise.resolve([...this.db.state.days]);
  }

  openTransactionsStartedBefore(t: Date): Promise<boolean> {
    this.db.call('openTransactionsStartedBefore');
    return Promise.resolve(this.openTransactionSince !== null && this.openTransactionSince < t);
  }

  storedLedgerRollup(day: string): Promise<LedgerRollupRow[]> {
    this.db.call('storedLedgerRollup');
    return Promise.resolve(this.db.state.rollups.get(day) ?? []);
  }

  snapshot<T>(fn: (tx: LedgerChainTx) => Promise<T>): Promise<T> {
    return this.db.transaction(() =>
      fn({
        computeLedgerRollup: (day) => {
          this.db.call('computeLedgerRollup');
          const byAccount = new Map<number, LedgerRollupRow>();
          for (const e of this.db.state.entries.get(day) ?? []) {
            const r = byAccount.get(e.account_id) ?? { account_id: e.account_id, entries: 0, debits_micro: 0, credits_micro: 0, net_micro: 0 };
            r.entries += 1;
            if (e.amount < 0) r.debits_micro -= e.amount;
            else r.credits_micro += e.amount;
            r.net_micro += e.amount;
            byAccount.set(e.account_id, r);
          }
          return Promise.resolve([...byAccount.values()].sort((a, b) => a.account_id - b.account_id));
        },
        forEachLedgerEntry: (day, each) => {
          this.db.call('forEachLedgerEntry');
          for (const e of this.db.state.entries.get(day) ?? []) each(e);
          return Promise.resolve();
        },
        insertLedgerDay: (d, rows) => {
          this.db.call('insertLedgerDay');
          // ledger_days' primary key: a day is chained once.
          if (this.db.state.days.some((x) => x.day === d.day)) throw new Error(`duplicate key value violates unique constraint "ledger_days_pkey" (${d.day})`);
          this.db.state.days.push(d);
          this.db.state.rollups.set(d.day, [...rows]);
          return Promise.resolve();
        },
      }),
    );
  }
}
