// Records the admin reads back and never changes here: the admin change log (every logged change, by
// whom, before and after) and a node's contribution points per epoch.
import type { AdminChangeRow } from '../postgres/admin-changes.repository.js';
import type { RcpEpochRow } from '../postgres/rcp.repository.js';

export interface AdminChangeFilter {
  limit: number;
  action?: string | undefined;
  subject?: string | undefined;
  /** An entry id: entries older than it (paging back). */
  beforeId?: number | undefined;
}

/** What the service needs from PostgreSQL: postgres/admin-records.store.ts (in memory: test/fakes/admin-records.store.ts). */
export interface AdminRecordsStore {
  /** Newest first. */
  listAdminChanges(filter: AdminChangeFilter): Promise<AdminChangeRow[]>;
  /** Newest epoch first, at most `limit` epochs. */
  rcpByEpoch(nodeId: string, limit: number): Promise<RcpEpochRow[]>;
}

export class AdminRecordsService {
  constructor(private readonly d: { store: AdminRecordsStore }) {}

  /** The admin change log, newest first; `beforeId` (an entry id) pages back. */
  changes(filter: AdminChangeFilter): Promise<AdminChangeRow[]> {
    return this.d.store.listAdminChanges(filter);
  }

  /** A node's contribution points per epoch, newest first. */
  contributionPoints(nodeId: string, epochs: number): Promise<RcpEpochRow[]> {
    return this.d.store.rcpByEpoch(nodeId, epochs);
  }
}
