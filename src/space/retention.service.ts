// Retention plans (issue 10, part 1): the owner or the admin sets a namespace's plan; the maintenance role
// meters each closed day of extended retention from what MongoDB holds for the namespace and charges it
// through the ledger (a `storage` transfer from the namespace to the platform, balanced by construction).
// A namespace that cannot pay falls back to `standard`, with an event its owner sees; its payloads already
// written stay in their extended buckets until their own expiry (domain/retention.ts: the class names the
// bucket), so nothing goes sooner than the plan they were written under promised.
import type { Logger } from 'pino';
import { InsufficientBalanceError } from '../postgres/ledger.repository.js';
import type { MeteringRow, SpaceEvent } from '../postgres/space.repository.js';
import { checkPlan, storageChargeMicro, type NamespaceRetention, type RetentionPlan } from '../domain/retention.js';
import type { PayloadsRepository } from '../mongo/payloads.repository.js';
import type { PinnedPayloads } from '../mongo/pinned-payloads.js';
import { errors } from '../errors.js';

export interface RetentionView extends NamespaceRetention {
  /** Hours a payload written now is kept (0: none is written). */
  retention_hours: number;
  price_micro_per_gib_day: number;
  events: SpaceEvent[];
  meterings: MeteringRow[];
}

export interface MeteringOutcome {
  namespaceId: string;
  storedBytes: number;
  chargedMicro: number;
  fellBack: boolean;
}

/**
 * What the service needs from PostgreSQL: the port its fast tests fake (test/fakes/retention.store.ts); on
 * the engine it is postgres/retention.store.ts.
 */
export interface RetentionStore {
  /** The namespace's plan, or null: no such namespace (or deleted). */
  findNamespace(namespaceId: string): Promise<NamespaceRetention | null>;
  listSpaceEvents(namespaceId: string): Promise<SpaceEvent[]>;
  listMeterings(namespaceId: string): Promise<MeteringRow[]>;
  /** Sets the plan and records its event; false when the namespace does not exist. */
  setRetentionPlan(namespaceId: string, plan: NamespaceRetention, by: 'owner' | 'admin'): Promise<boolean>;
  /** Deletes (one page of) payload keys created before `before`, pinned jobs' excepted: how many went. */
  deleteExpiredSalts(before: Date): Promise<number>;
  /** Namespaces that pay for storage: on an extended plan, or holding pins. */
  listExtendedNamespaces(): Promise<Array<{ id: string; retention_plan: RetentionPlan; retention_days: number | null }>>;
  isMetered(namespaceId: string, day: string): Promise<boolean>;
  /** All of `fn` or none of it: a day's charge and its claim, or a fall-back and its claim. */
  transaction<T>(fn: (tx: RetentionTx) => Promise<T>): Promise<T>;
}

export interface RetentionTx {
  /**
   * Moves `micro` from the namespace's available balance to the platform (a `storage` posting): its ledger
   * transaction's id (null for nothing to post). Throws InsufficientBalanceError when the namespace cannot pay.
   */
  chargeStorage(namespaceId: string, micro: number, memo: string): Promise<number | null>;
  /** Records the day as metered; false when it was already (another instance's claim). */
  claimMetering(m: { namespaceId: string; day: string; storedBytes: number; chargedMicro: number; ledgerTxnId: number | null; fellBack: boolean }): Promise<boolean>;
  /** The fall-back's plan change, recorded as `fell_back`. */
  setRetentionPlan(namespaceId: string, plan: NamespaceRetention, by: 'metering'): Promise<boolean>;
  deleteAllPins(namespaceId: string): Promise<number>;
}

/** The MongoDB side: bytes a namespace holds past the standard plan, and its pinned copies. */
export interface RetentionPayloadsPort {
  storedBytes: PayloadsRepository['storedBytes'];
  pinned: Pick<PinnedPayloads, 'bytes' | 'dropAll'>;
}

export class RetentionService {
  constructor(
    private readonly d: {
      store: RetentionStore;
      payloads: RetentionPayloadsPort;
      standardHours: number;
      maxDays: number;
      priceMicroPerGibDay: number;
      logger: Logger;
    },
  ) {}

  async view(namespaceId: string): Promise<RetentionView> {
    const ns = await this.d.store.findNamespace(namespaceId);
    if (!ns) throw errors.notFound('Namespace');
    const hours = ns.retention_plan === 'zero' ? 0 : ns.retention_plan === 'extended' ? (ns.retention_days ?? 0) * 24 : this.d.standardHours;
    return {
      retention_plan: ns.retention_plan,
      retention_days: ns.retention_days,
      retention_hours: hours,
      price_micro_per_gib_day: this.d.priceMicroPerGibDay,
      events: await this.d.store.listSpaceEvents(namespaceId),
      meterings: await this.d.store.listMeterings(namespaceId),
    };
  }

  /**
   * Deletes payload keys older than any plan keeps a payload (pinned jobs' excepted): the documents they
   * opened are gone or going, and so is any copy's key. One page per call; how many went.
   */
  sweepExpiredKeys(now = new Date()): Promise<number> {
    return this.d.store.deleteExpiredSalts(new Date(now.getTime() - keyLifetimeHours(this.d.standardHours, this.d.maxDays) * 3_600_000));
  }

  /** Sets a plan (checked against the platform's maximum); applies to payloads written from now on. */
  async setPlan(namespaceId: string, plan: string, days: number | null | undefined, by: 'owner' | 'admin'): Promise<RetentionView> {
    const checked = checkPlan(plan, days, this.d.maxDays);
    if (!checked.ok) throw errors.invalid(checked.message, 'plan');
    if (!(await this.d.store.setRetentionPlan(namespaceId, checked.value, by))) throw errors.notFound('Namespace');
    return this.view(namespaceId);
  }

  /**
   * Meters `day` (YYYY-MM-DD, a closed UTC day) for every namespace on an extended plan: bytes it holds in
   * extended classes now, charged at the GiB-day price. Once per namespace and day (space_meterings'
   * key), whichever instance runs it; a namespace that cannot pay is charged nothing and falls back.
   */
  async meterDay(day: string, now = new Date()): Promise<MeteringOutcome[]> {
    const out: MeteringOutcome[] = [];
    for (const ns of await this.d.store.listExtendedNamespaces()) {
      if (await this.d.store.isMetered(ns.id, day)) continue;
      // Extended: its extended classes and its pins; any other plan: its pins alone (what it holds under an
      // extended class from before a change of plan was paid for while it was written, and is not billed).
      const storedBytes = ns.retention_plan === 'extended' ? await this.d.payloads.storedBytes(ns.id, this.d.standardHours, now) : await this.d.payloads.pinned.bytes(ns.id);
      const chargedMicro = storageChargeMicro(storedBytes, this.d.priceMicroPerGibDay);
      try {
        const claimed = await this.d.store.transaction(async (tx) => {
          const txn = chargedMicro > 0 ? await tx.chargeStorage(ns.id, chargedMicro, `space ${day}: ${storedBytes} bytes`) : null;
          // Claimed after the posting, in the same transaction: a second instance's claim waits on this
          // row's key and then finds it taken, so the day is charged once.
          if (!(await tx.claimMetering({ namespaceId: ns.id, day, storedBytes, chargedMicro, ledgerTxnId: txn, fellBack: false }))) throw new AlreadyMetered();
          return true;
        });
        if (claimed) out.push({ namespaceId: ns.id, storedBytes, chargedMicro, fellBack: false });
      } catch (err) {
        if (err instanceof AlreadyMetered) continue;
        if (!(err instanceof InsufficientBalanceError)) throw err;
        // Cannot pay: nothing charged, the plan falls back to standard (an event the owner sees) and its pins
        // are released (their copies go; each original keeps the days its class promised).
        const fell = await this.d.store.transaction(async (tx) => {
          if (!(await tx.claimMetering({ namespaceId: ns.id, day, storedBytes, chargedMicro: 0, ledgerTxnId: null, fellBack: true }))) return false;
          await tx.setRetentionPlan(ns.id, { retention_plan: 'standard', retention_days: null }, 'metering');
          await tx.deleteAllPins(ns.id);
          return true;
        });
        if (fell) await this.d.payloads.pinned.dropAll(ns.id);
        if (fell) {
          this.d.logger.info({ namespaceId: ns.id, day, storedBytes, chargedMicro }, 'space: extended retention unpaid; the namespace falls back to standard');
          out.push({ namespaceId: ns.id, storedBytes, chargedMicro: 0, fellBack: true });
        }
      }
    }
    return out;
  }
}

class AlreadyMetered extends Error {}

/** Hours past a payload key's creation after which its document has expired under any plan (plus its day's slack). */
export function keyLifetimeHours(standardHours: number, maxDays: number): number {
  return Math.max(standardHours, maxDays * 24) + 48;
}
