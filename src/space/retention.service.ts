// Retention plans (issue 10, part 1): the owner or the admin sets a namespace's plan; the maintenance role
// meters each closed day of extended retention from what MongoDB holds for the namespace and charges it
// through the ledger (a `storage` transfer from the namespace to the platform, balanced by construction).
// A namespace that cannot pay falls back to `standard`, with an event its owner sees; its payloads already
// written stay in their extended buckets until their own expiry (domain/retention.ts: the class names the
// bucket), so nothing goes sooner than the plan they were written under promised.
import type { Logger } from 'pino';
import type { Db } from '../postgres/db.js';
import { withTransaction } from '../postgres/db.js';
import { InsufficientBalanceError, ledgerAccountId, postTransaction } from '../postgres/ledger.repository.js';
import { claimMetering, deleteAllPins, isMetered, listExtendedNamespaces, listMeterings, listSpaceEvents, setRetentionPlan, type MeteringRow, type SpaceEvent } from '../postgres/space.repository.js';
import { findNamespace } from '../postgres/accounts.repository.js';
import { deleteExpiredSalts } from '../postgres/payload-keys.repository.js';
import { checkPlan, storageChargeMicro, type NamespaceRetention } from '../domain/retention.js';
import type { PayloadsRepository } from '../mongo/payloads.repository.js';
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

export class RetentionService {
  constructor(
    private readonly d: {
      db: Db;
      payloads: PayloadsRepository;
      standardHours: number;
      maxDays: number;
      priceMicroPerGibDay: number;
      logger: Logger;
    },
  ) {}

  async view(namespaceId: string): Promise<RetentionView> {
    const ns = await findNamespace(this.d.db, namespaceId);
    if (!ns) throw errors.notFound('Namespace');
    const hours = ns.retention_plan === 'zero' ? 0 : ns.retention_plan === 'extended' ? (ns.retention_days ?? 0) * 24 : this.d.standardHours;
    return {
      retention_plan: ns.retention_plan,
      retention_days: ns.retention_days,
      retention_hours: hours,
      price_micro_per_gib_day: this.d.priceMicroPerGibDay,
      events: await listSpaceEvents(this.d.db, namespaceId),
      meterings: await listMeterings(this.d.db, namespaceId),
    };
  }

  /**
   * Deletes payload keys older than any plan keeps a payload (pinned jobs' excepted): the documents they
   * opened are gone or going, and so is any copy's key. One page per call; how many went.
   */
  sweepExpiredKeys(now = new Date()): Promise<number> {
    return deleteExpiredSalts(this.d.db, new Date(now.getTime() - keyLifetimeHours(this.d.standardHours, this.d.maxDays) * 3_600_000));
  }

  /** Sets a plan (checked against the platform's maximum); applies to payloads written from now on. */
  async setPlan(namespaceId: string, plan: string, days: number | null | undefined, by: 'owner' | 'admin'): Promise<RetentionView> {
    const checked = checkPlan(plan, days, this.d.maxDays);
    if (!checked.ok) throw errors.invalid(checked.message, 'plan');
    if (!(await setRetentionPlan(this.d.db, namespaceId, checked.value, by))) throw errors.notFound('Namespace');
    return this.view(namespaceId);
  }

  /**
   * Meters `day` (YYYY-MM-DD, a closed UTC day) for every namespace on an extended plan: bytes it holds in
   * extended classes now, charged at the GiB-day price. Once per namespace and day (space_meterings'
   * key), whichever instance runs it; a namespace that cannot pay is charged nothing and falls back.
   */
  async meterDay(day: string, now = new Date()): Promise<MeteringOutcome[]> {
    const out: MeteringOutcome[] = [];
    for (const ns of await listExtendedNamespaces(this.d.db)) {
      if (await isMetered(this.d.db, ns.id, day)) continue;
      // Extended: its extended classes and its pins; any other plan: its pins alone (what it holds under an
      // extended class from before a change of plan was paid for while it was written, and is not billed).
      const storedBytes = ns.retention_plan === 'extended' ? await this.d.payloads.storedBytes(ns.id, this.d.standardHours, now) : await this.d.payloads.pinned.bytes(ns.id);
      const chargedMicro = storageChargeMicro(storedBytes, this.d.priceMicroPerGibDay);
      try {
        const claimed = await withTransaction(this.d.db, async (tx) => {
          const txn = chargedMicro > 0
            ? await postTransaction(tx, { kind: 'storage', jobId: null, memo: `space ${day}: ${storedBytes} bytes` }, [
                { accountId: await ledgerAccountId(tx, 'ns_available', ns.id), amount: -chargedMicro },
                { accountId: await ledgerAccountId(tx, 'platform_revenue', null), amount: chargedMicro },
              ])
            : null;
          // Claimed after the posting, in the same transaction: a second instance's claim waits on this
          // row's key and then finds it taken, so the day is charged once.
          if (!(await claimMetering(tx, { namespaceId: ns.id, day, storedBytes, chargedMicro, ledgerTxnId: txn, fellBack: false }))) throw new AlreadyMetered();
          return true;
        });
        if (claimed) out.push({ namespaceId: ns.id, storedBytes, chargedMicro, fellBack: false });
      } catch (err) {
        if (err instanceof AlreadyMetered) continue;
        if (!(err instanceof InsufficientBalanceError)) throw err;
        // Cannot pay: nothing charged, the plan falls back to standard (an event the owner sees) and its pins
        // are released (their copies go; each original keeps the days its class promised).
        const fell = await withTransaction(this.d.db, async (tx) => {
          if (!(await claimMetering(tx, { namespaceId: ns.id, day, storedBytes, chargedMicro: 0, ledgerTxnId: null, fellBack: true }))) return false;
          await setRetentionPlan(tx, ns.id, { retention_plan: 'standard', retention_days: null }, 'metering');
          await deleteAllPins(tx, ns.id);
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
