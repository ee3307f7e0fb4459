// In-memory RetentionStore and payload side (space/retention.service.ts) for the service's fast tests.
import type { NamespaceRetention, RetentionPlan } from '../../src/domain/retention.js';
import { InsufficientBalanceError } from '../../src/postgres/ledger.repository.js';
import type { MeteringRow, SpaceEvent } from '../../src/postgres/space.repository.js';
import type { RetentionPayloadsPort, RetentionStore, RetentionTx } from '../../src/space/retention.service.js';
import { FakeDatabase } from './fake-database.js';

interface FakeNamespace extends NamespaceRetention {
  /** ns_available, micro-credits */
  balance: number;
  pins: number;
}

export class FakeRetentionStore implements RetentionStore {
  readonly db = new FakeDatabase({
    namespaces: new Map<string, FakeNamespace>(),
    /** Newest last (listSpaceEvents answers newest first, as the engine does). */
    events: [] as Array<{ namespaceId: string; event: SpaceEvent }>,
    meterings: [] as Array<{ namespaceId: string; row: MeteringRow; ledgerTxnId: number | null }>,
    /** The ledger's storage postings: from the namespace to the platform. */
    postings: [] as Array<{ id: number; namespaceId: string; micro: number; memo: string }>,
    /** Payload keys (salts): the job and when made; a pinned job's survive the sweep. */
    salts: [] as Array<{ jobId: string; createdAt: Date; pinned: boolean }>,
  });

  addNamespace(id: string, plan: RetentionPlan, days: number | null, balance = 0, pins = 0): void {
    this.db.state.namespaces.set(id, { retention_plan: plan, retention_days: days, balance, pins });
  }

  findNamespace(namespaceId: string): Promise<NamespaceRetention | null> {
    this.db.call('findNamespace');
    const ns = this.db.state.namespaces.get(namespaceId);
    return Promise.resolve(ns ? { retention_plan: ns.retention_plan, retention_days: ns.retention_days } : null);
  }

  listSpaceEvents(namespaceId: string): Promise<SpaceEvent[]> {
    return Promise.resolve(this.db.state.events.filter((e) => e.namespaceId === namespaceId).map((e) => e.event).reverse());
  }

  listMeterings(namespaceId: string): Promise<MeteringRow[]> {
    const rows = this.db.state.meterings.filter((m) => m.namespaceId === namespaceId).map((m) => m.row);
    return Promise.resolve(rows.sort((a, b) => b.day.localeCompare(a.day)));
  }

  setRetentionPlan(namespaceId: string, plan: NamespaceRetention, by: 'owner' | 'admin' | 'metering'): Promise<boolean> {
    this.db.call('setRetentionPlan');
    const ns = this.db.state.namespaces.get(namespaceId);
    if (!ns) return Promise.resolve(false);
    ns.retention_plan = plan.retention_plan;
    ns.retention_days = plan.retention_days;
    const kind = by === 'metering' ? 'fell_back' : 'plan_changed';
    this.db.state.events.push({ namespaceId, event: { at: new Date(), kind, detail: { plan: plan.retention_plan, days: plan.retention_days, by } } });
    return Promise.resolve(true);
  }

  deleteExpiredSalts(before: Date): Promise<number> {
    this.db.call('deleteExpiredSalts');
    const kept = this.db.state.salts.filter((s) => s.pinned || s.createdAt >= before);
    const gone = this.db.state.salts.length - kept.length;
    this.db.state.salts = kept;
    return Promise.resolve(gone);
  }

  listExtendedNamespaces(): Promise<Array<{ id: string; retention_plan: RetentionPlan; retention_days: number | null }>> {
    const out = [...this.db.state.namespaces].filter(([, ns]) => ns.retention_plan === 'extended' || ns.pins > 0);
    return Promise.resolve(out.sort(([a], [b]) => a.localeCompare(b)).map(([id, ns]) => ({ id, retention_plan: ns.retention_plan, retention_days: ns.retention_days })));
  }

  isMetered(namespaceId: string, day: string): Promise<boolean> {
    return Promise.resolve(this.db.state.meterings.some((m) => m.namespaceId === namespaceId && m.row.day === day));
  }

  transaction<T>(fn: (tx: RetentionTx) => Promise<T>): Promise<T> {
    return this.db.transaction(() =>
      fn({
        chargeStorage: (namespaceId, micro, memo) => {
          this.db.call('chargeStorage');
          const ns = this.db.state.namespaces.get(namespaceId);
          // The per-account CHECK of the engine: an account never goes below zero.
          if (!ns || ns.balance < micro) throw new InsufficientBalanceError(1);
          ns.balance -= micro;
          const id = this.db.state.postings.length + 1;
          this.db.state.postings.push({ id, namespaceId, micro, memo });
          return Promise.resolve(id);
        },
        claimMetering: (m) => {
          this.db.call('claimMetering');
          if (this.db.state.meterings.some((x) => x.namespaceId === m.namespaceId && x.row.day === m.day)) return Promise.resolve(false);
          this.db.state.meterings.push({ namespaceId: m.namespaceId, ledgerTxnId: m.ledgerTxnId, row: { day: m.day, stored_bytes: m.storedBytes, charged_micro: m.chargedMicro, fell_back: m.fellBack } });
          return Promise.resolve(true);
        },
        setRetentionPlan: (namespaceId, plan, by) => this.setRetentionPlan(namespaceId, plan, by),
        deleteAllPins: (namespaceId) => {
          this.db.call('deleteAllPins');
          const ns = this.db.state.namespaces.get(namespaceId);
          const n = ns?.pins ?? 0;
          if (ns) ns.pins = 0;
          return Promise.resolve(n);
        },
      }),
    );
  }
}

/** The MongoDB side: bytes each namespace holds in extended classes, and its pinned copies' bytes. */
export class FakeRetentionPayloads implements RetentionPayloadsPort {
  readonly extendedBytes = new Map<string, number>();
  readonly pinnedBytes = new Map<string, number>();
  /** What storedBytes was asked: the namespace and the class above which it counts. */
  readonly asked: Array<{ namespaceId: string; aboveHours: number }> = [];

  storedBytes(namespaceId: string, aboveHours: number): Promise<number> {
    this.asked.push({ namespaceId, aboveHours });
    return Promise.resolve((this.extendedBytes.get(namespaceId) ?? 0) + (this.pinnedBytes.get(namespaceId) ?? 0));
  }

  readonly pinned: RetentionPayloadsPort['pinned'] = {
    bytes: (namespaceId) => Promise.resolve(this.pinnedBytes.get(namespaceId) ?? 0),
    dropAll: (namespaceId) => {
      this.pinnedBytes.delete(namespaceId);
      return Promise.resolve();
    },
  };
}
