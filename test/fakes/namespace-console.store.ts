// In-memory NamespaceConsoleStore (gate/namespace-console.service.ts) for the console's fast tests.
import type { NamespaceRow } from '../../src/postgres/accounts.repository.js';
import type { NamespaceJobRow } from '../../src/postgres/namespace-jobs.repository.js';
import type { NamespaceConsoleStore } from '../../src/gate/namespace-console.service.js';
import { FakeDatabase } from './fake-database.js';
import { namespaceRow } from './catalog.store.js';

export class FakeNamespaceConsoleStore implements NamespaceConsoleStore {
  readonly db = new FakeDatabase({
    namespaces: [] as Array<NamespaceRow & { deleted: boolean }>,
    jobs: [] as Array<NamespaceJobRow & { namespace_id: string }>,
  });

  addNamespace(accountId: string, id: string, deleted = false): void {
    this.db.state.namespaces.push({ ...namespaceRow(id, { account_id: accountId }), deleted });
  }

  findOwnedNamespace(accountId: string, namespaceId: string): Promise<NamespaceRow | null> {
    const ns = this.db.state.namespaces.find((n) => n.id === namespaceId && n.account_id === accountId && !n.deleted);
    if (!ns) return Promise.resolve(null);
    const { deleted: _deleted, ...row } = ns;
    return Promise.resolve(row);
  }

  listRecentJobs(namespaceId: string, since: Date, limit: number): Promise<NamespaceJobRow[]> {
    this.db.call('listRecentJobs');
    return Promise.resolve(
      this.db.state.jobs
        .filter((j) => j.namespace_id === namespaceId && j.created_at >= since)
        .sort((a, b) => b.created_at.getTime() - a.created_at.getTime())
        .slice(0, limit)
        .map(({ namespace_id: _ns, ...row }) => row),
    );
  }
}
