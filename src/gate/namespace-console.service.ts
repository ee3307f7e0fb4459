// The consumer's side of the account API beyond namespaces and keys: a namespace's balance and holds,
// its usage report and its recent jobs. Each call first establishes that the caller owns the namespace:
// another account's namespace is "not found", exactly like one that does not exist.
import { errors, formatCredits } from '../errors.js';
import type { NamespaceRow } from '../postgres/accounts.repository.js';
import type { NamespaceJobRow } from '../postgres/namespace-jobs.repository.js';
import type { CreditsAdminService } from './credits-admin.service.js';
import type { AccountPrincipal } from './account.service.js';

/** How far back the recent-jobs list looks: a week keeps its scan to a week of day partitions. */
const RECENT_JOBS_DAYS = 7;

export interface NamespaceBalanceView {
  namespace_id: string;
  available_micro: number;
  held_micro: number;
  /** The same amounts in credits, as decimal strings. */
  available: string;
  /** Credits held for jobs accepted and not yet settled (each job's worst case until it ends). */
  held: string;
}

export interface NamespaceJobView extends NamespaceJobRow {
  hold: string;
  /** Null until the job is settled. */
  credits_charged: string | null;
}

/** What the console reads from PostgreSQL (postgres/namespace-console.store.ts; in memory: test/fakes/namespace-console.store.ts). */
export interface NamespaceConsoleStore {
  /** The namespace if the account owns it (and it is not deleted); null otherwise. */
  findOwnedNamespace(accountId: string, namespaceId: string): Promise<NamespaceRow | null>;
  /** The namespace's jobs created since `since`, newest first. */
  listRecentJobs(namespaceId: string, since: Date, limit: number): Promise<NamespaceJobRow[]>;
}

export class NamespaceConsoleService {
  constructor(private readonly d: { store: NamespaceConsoleStore; credits: Pick<CreditsAdminService, 'balance'> }) {}

  /** 404 unless the caller owns the namespace; used before any read of it. */
  async owned(p: AccountPrincipal, namespaceId: string): Promise<NamespaceRow> {
    const ns = await this.d.store.findOwnedNamespace(p.accountId, namespaceId);
    if (!ns) throw errors.notFound('Namespace');
    return ns;
  }

  async balance(p: AccountPrincipal, namespaceId: string): Promise<NamespaceBalanceView> {
    await this.owned(p, namespaceId);
    const b = await this.d.credits.balance(namespaceId);
    return { ...b, available: formatCredits(b.available_micro), held: formatCredits(b.held_micro) };
  }

  /** The namespace's newest jobs (of the last week), newest first: status, tokens, hold and charge; never the node. */
  async recentJobs(p: AccountPrincipal, namespaceId: string, limit: number): Promise<NamespaceJobView[]> {
    await this.owned(p, namespaceId);
    const since = new Date(Date.now() - RECENT_JOBS_DAYS * 86_400_000);
    const rows = await this.d.store.listRecentJobs(namespaceId, since, limit);
    return rows.map((j) => ({ ...j, hold: formatCredits(j.hold_micro), credits_charged: j.charged_micro === null ? null : formatCredits(j.charged_micro) }));
  }
}
