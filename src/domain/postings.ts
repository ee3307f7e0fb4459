// The ledger's postings, built in one place: which accounts each kind of transaction moves credits
// between, and how much. Every builder returns a posting whose lines sum to zero (double entry), or
// throws; the database checks the same at commit (a deferred trigger), so an unbalanced posting is a bug
// caught twice, first here without an engine. postgres/ledger.repository.ts `post` writes a posting.
//
// The hot path's holds and settlements are posted by accept_jobs and settle_jobs in SQL (one statement
// per batch): they move the same accounts as hold(), release() and capture() here, which state the rule.
import { splitCapture } from './pricing.js';

export type LedgerAccountKind = 'funding' | 'ns_available' | 'ns_held' | 'operator_earnings' | 'operator_withdrawal' | 'platform_revenue';
export type LedgerTxnKind = 'topup' | 'hold' | 'capture' | 'release' | 'withdrawal' | 'storage';

/** An account by what it is: its kind and owner (a namespace, an operator account; null for the network's own). */
export interface AccountRef {
  kind: LedgerAccountKind;
  owner: string | null;
}

export interface PostingLine {
  account: AccountRef;
  /** Micro-credits; negative leaves the account, positive enters it. */
  amount: number;
}

export interface Posting {
  kind: LedgerTxnKind;
  jobId: string | null;
  memo?: string;
  /** Non-zero lines summing to zero; empty when nothing moves (such a posting is not written). */
  lines: readonly PostingLine[];
}

export class UnbalancedPostingError extends Error {
  constructor(kind: LedgerTxnKind, sum: number) {
    super(`a ${kind} posting must sum to zero; it sums to ${sum}`);
    this.name = 'UnbalancedPostingError';
  }
}

const account = (kind: LedgerAccountKind, owner: string | null): AccountRef => ({ kind, owner });

/** A posting of these lines: zero lines dropped, every amount a safe integer, the sum zero. */
export function posting(kind: LedgerTxnKind, jobId: string | null, lines: readonly PostingLine[], memo?: string): Posting {
  const kept = lines.filter((l) => l.amount !== 0);
  for (const l of kept) if (!Number.isSafeInteger(l.amount)) throw new RangeError(`a ${kind} posting's amount is not a safe integer: ${l.amount}`);
  const sum = kept.reduce((s, l) => s + l.amount, 0);
  if (sum !== 0) throw new UnbalancedPostingError(kind, sum);
  return { kind, jobId, lines: kept, ...(memo === undefined ? {} : { memo }) };
}

/** A namespace bought credits: from the network's funding account to its available credits. */
export function topup(namespaceId: string, micro: number, memo?: string): Posting {
  positive(micro);
  return posting('topup', null, [
    { account: account('funding', null), amount: -micro },
    { account: account('ns_available', namespaceId), amount: micro },
  ], memo);
}

/** A job's hold: from the namespace's available credits to its held credits. */
export function hold(jobId: string, namespaceId: string, micro: number): Posting {
  return posting('hold', jobId, [
    { account: account('ns_available', namespaceId), amount: -micro },
    { account: account('ns_held', namespaceId), amount: micro },
  ]);
}

/** What a job's hold gives back (the hold less its charge): from held to available credits. */
export function release(jobId: string, namespaceId: string, micro: number): Posting {
  return posting('release', jobId, [
    { account: account('ns_held', namespaceId), amount: -micro },
    { account: account('ns_available', namespaceId), amount: micro },
  ]);
}

/**
 * A job's charge, from its held credits: the operator's share (basis points) to the node's operator, the
 * rest to the platform; all of it to the platform when the node has no operator on record.
 */
export function capture(jobId: string, namespaceId: string, chargedMicro: number, operatorId: string | null, operatorShareBps: number): Posting {
  const split = splitCapture(chargedMicro, operatorShareBps);
  return posting('capture', jobId, [
    { account: account('ns_held', namespaceId), amount: -chargedMicro },
    ...(operatorId ? [{ account: account('operator_earnings', operatorId), amount: split.operator }] : []),
    { account: account('platform_revenue', null), amount: operatorId ? split.platform : chargedMicro },
  ]);
}

/** An operator asked to be paid: from their earnings to their pending withdrawals. */
export function withdrawal(operatorId: string, micro: number, destination: string): Posting {
  positive(micro);
  return posting('withdrawal', null, [
    { account: account('operator_earnings', operatorId), amount: -micro },
    { account: account('operator_withdrawal', operatorId), amount: micro },
  ], destination);
}

/** A day of extended payload retention: from the namespace's available credits to the platform. */
export function storage(namespaceId: string, micro: number, memo: string): Posting {
  return posting('storage', null, [
    { account: account('ns_available', namespaceId), amount: -micro },
    { account: account('platform_revenue', null), amount: micro },
  ], memo);
}

function positive(micro: number): void {
  if (!Number.isSafeInteger(micro) || micro <= 0) throw new RangeError(`amount must be a positive number of micro-credits: ${micro}`);
}
