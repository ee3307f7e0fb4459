// In-memory AccountsAdminStore (gate/accounts-admin.service.ts) on the shared gate tables.
import type { AccountsAdminStore, AccountsAdminTx } from '../../src/gate/accounts-admin.service.js';
import type { AccountRow, NamespaceRow } from '../../src/postgres/accounts.repository.js';
import type { Network } from '../../src/domain/eligibility.js';
import type { FakeGateDatabase } from './gate-tables.js';

export class FakeAccountsAdminStore implements AccountsAdminStore {
  constructor(readonly db: FakeGateDatabase) {}

  createAccount(name: string): Promise<AccountRow> {
    this.db.call('createAccount');
    const { id, created_at } = this.db.addAccount(name);
    return Promise.resolve({ id, name, created_at });
  }

  findAccount(accountId: string): Promise<AccountRow | null> {
    this.db.call('findAccount');
    const a = this.db.state.accounts.get(accountId);
    return Promise.resolve(a ? { id: a.id, name: a.name, created_at: a.created_at } : null);
  }

  renameNamespace(namespaceId: string, name: string): Promise<NamespaceRow | null | 'name_taken'> {
    this.db.call('renameNamespace');
    const ns = this.db.state.namespaces.get(namespaceId);
    if (!ns || ns.deleted) return Promise.resolve(null);
    if (this.nameTaken(ns.account_id, name, namespaceId)) return Promise.resolve('name_taken');
    ns.name = name;
    return Promise.resolve(this.db.liveNamespace(namespaceId));
  }

  private nameTaken(accountId: string, name: string, except?: string): boolean {
    return [...this.db.state.namespaces.values()].some((n) => !n.deleted && n.account_id === accountId && n.name === name && n.id !== except);
  }

  transaction<T>(fn: (tx: AccountsAdminTx) => Promise<T>): Promise<T> {
    const db = this.db;
    const s = () => db.state;
    return db.transaction(() =>
      fn({
        lockAccountForQuota: (accountId) => {
          db.call('lockAccountForQuota');
          return Promise.resolve(s().accounts.has(accountId));
        },
        countLiveNamespaces: (accountId) => {
          db.call('countLiveNamespaces');
          return Promise.resolve([...s().namespaces.values()].filter((n) => !n.deleted && n.account_id === accountId).length);
        },
        createNamespace: (accountId: string, name: string, network: Network) => {
          db.call('createNamespace');
          if (this.nameTaken(accountId, name)) return Promise.resolve('name_taken' as const);
          const ns = db.addNamespace(accountId, name, network);
          return Promise.resolve(db.liveNamespace(ns.id)!);
        },
        findNamespace: (namespaceId) => {
          db.call('findNamespace');
          return Promise.resolve(db.liveNamespace(namespaceId));
        },
        lockLedger: () => {
          db.call('lockLedger');
          return Promise.resolve();
        },
        credits: (namespaceId) => {
          db.call('credits');
          return Promise.resolve(db.balance('ns_available', namespaceId) + db.balance('ns_held', namespaceId));
        },
        countUnfinishedJobs: (namespaceId) => {
          db.call('countUnfinishedJobs');
          return Promise.resolve(s().unfinishedJobs.get(namespaceId) ?? 0);
        },
        markNamespaceDeleted: (namespaceId) => {
          db.call('markNamespaceDeleted');
          const ns = s().namespaces.get(namespaceId);
          if (!ns || ns.deleted) return Promise.resolve(false);
          ns.deleted = true;
          return Promise.resolve(true);
        },
        revokeNamespaceApiKeys: (namespaceId) => {
          db.call('revokeNamespaceApiKeys');
          const hashes = [...s().apiKeys.values()].filter((k) => k.namespace_id === namespaceId).map((k) => db.revokeKey(k.id)).filter((h): h is Buffer => h !== null);
          return Promise.resolve(hashes);
        },
      }),
    );
  }
}

