// Credits, for the platform's admin: top-ups (a ledger transfer from the funding account), a namespace's
// balance, and the ledger's totals (zero when it balances).
import { errors, MICRO } from '../errors.js';
import * as postings from '../domain/postings.js';
import type { NamespaceRow } from '../postgres/accounts.repository.js';
import type { LedgerTotals } from '../postgres/ledger.repository.js';

/** Largest single top-up (and monthly key cap), in credits: keeps every amount far inside the safe-integer range. */
export const MAX_TOPUP_CREDITS = 1_000_000_000;

export interface Balance {
  namespace_id: string;
  available_micro: number;
  held_micro: number;
}

/** What the service needs from PostgreSQL: postgres/credits-admin.store.ts (in memory: test/fakes/credits-admin.store.ts). */
export interface CreditsAdminStore {
  findNamespace(namespaceId: string): Promise<NamespaceRow | null>;
  /** The namespace's available and held credits, micro-credits. */
  balances(namespaceId: string): Promise<{ available: number; held: number }>;
  ledgerTotals(): Promise<LedgerTotals>;
  /** All of `fn` or none of it. */
  transaction<T>(fn: (tx: CreditsAdminTx) => Promise<T>): Promise<T>;
}

export interface CreditsAdminTx {
  /** Writes a balanced posting (domain/postings.ts), locking the accounts it moves. */
  post(posting: postings.Posting): Promise<void>;
  findNamespace(namespaceId: string): Promise<NamespaceRow | null>;
}

export class CreditsAdminService {
  constructor(private readonly d: { store: CreditsAdminStore }) {}

  /** Adds credits to a namespace: a transfer from the funding account. `credits` may have up to 6 decimals. */
  async topUp(namespaceId: string, credits: number, memo = ''): Promise<Balance> {
    if (!Number.isFinite(credits) || credits <= 0 || credits > MAX_TOPUP_CREDITS) {
      throw errors.invalid(`amount must be a positive number of credits, at most ${MAX_TOPUP_CREDITS}`, 'amount');
    }
    const micro = Math.round(credits * MICRO);
    if (micro < 1) throw errors.invalid('amount must be at least 0.000001 credits (one micro-credit)', 'amount');
    if (!(await this.d.store.findNamespace(namespaceId))) throw errors.notFound('Namespace');
    await this.d.store.transaction(async (tx) => {
      await tx.post(postings.topup(namespaceId, micro, memo));
      // Checked again now that the posting holds the namespace's ledger lock, which deleteNamespace takes
      // too (gate/accounts-admin.service.ts): credits must never land in a namespace deleted since the check above.
      if (!(await tx.findNamespace(namespaceId))) throw errors.notFound('Namespace');
    });
    return this.balance(namespaceId);
  }

  async balance(namespaceId: string): Promise<Balance> {
    if (!(await this.d.store.findNamespace(namespaceId))) throw errors.notFound('Namespace');
    const { available, held } = await this.d.store.balances(namespaceId);
    return { namespace_id: namespaceId, available_micro: available, held_micro: held };
  }

  /** The sum over all ledger accounts (zero when the ledger balances). */
  ledgerTotals(): Promise<LedgerTotals> {
    return this.d.store.ledgerTotals();
  }
}
