// In-memory CreditsAdminStore (gate/credits-admin.service.ts) on the shared gate tables.
import type { CreditsAdminStore, CreditsAdminTx } from '../../src/gate/credits-admin.service.js';
import type { NamespaceRow } from '../../src/postgres/accounts.repository.js';
import type { LedgerTotals } from '../../src/postgres/ledger.repository.js';
import type { FakeGateDatabase } from './gate-tables.js';

export class FakeCreditsAdminStore implements CreditsAdminStore {
  constructor(readonly db: FakeGateDatabase) {}

  findNamespace(namespaceId: string): Promise<NamespaceRow | null> {
    this.db.call('findNamespace');
    return Promise.resolve(this.db.liveNamespace(namespaceId));
  }

  balances(namespaceId: string): Promise<{ available: number; held: number }> {
    this.db.call('balances');
    return Promise.resolve({ available: this.db.balance('ns_available', namespaceId), held: this.db.balance('ns_held', namespaceId) });
  }

  ledgerTotals(): Promise<LedgerTotals> {
    this.db.call('ledgerTotals');
    const sum = this.db.ledgerSum();
    return Promise.resolve({ entriesTotal: sum, balancesTotal: sum, mismatchedAccounts: 0 });
  }

  transaction<T>(fn: (tx: CreditsAdminTx) => Promise<T>): Promise<T> {
    const db = this.db;
    return db.transaction(() =>
      fn({
        post: (posting) => {
          db.call('post');
          db.post(posting);
          return Promise.resolve();
        },
        findNamespace: (namespaceId) => {
          db.call('findNamespace');
          return Promise.resolve(db.liveNamespace(namespaceId));
        },
      }),
    );
  }
}
