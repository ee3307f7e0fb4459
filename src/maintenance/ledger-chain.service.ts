// The ledger's daily rollup and hash chain (src/domain/ledger-chain.ts says what is hashed): the
// maintenance role chains each closed day once; `verify` recomputes the chain for the admin API and CLI
// and names the first day where it breaks, and why.
import { addDays, dayStart } from '../domain/job-history.js';
import { LEDGER_GENESIS_HASH, LedgerEntriesDigest, ledgerDayHash, sameRollupRows, type LedgerEntryRecord, type LedgerRollupRow } from '../domain/ledger-chain.js';
import type { LedgerDayRow } from '../postgres/ledger-history.repository.js';

/**
 * How long past its end a ledger day waits before it may be chained; on top of that, no transaction that
 * started before the day's end may still be open (its entries would carry the day's date).
 */
const LEDGER_DAY_CLOSE_MARGIN_MS = 60_000;

export interface LedgerVerifyReport {
  ok: boolean;
  /** Days whose chain link, rollup and entries all checked out. */
  days_verified: number;
  first_day: string | null;
  last_day: string | null;
  /** The hash of the last verified day: the head of the chain. */
  head_hash: string;
  /** The first day that does not verify, and why; null when the whole chain does. */
  broken: { day: string; reason: string } | null;
}

/**
 * What the service needs from PostgreSQL: the port its fast tests fake (test/fakes/ledger-chain.store.ts);
 * on the engine it is postgres/ledger-chain.store.ts.
 */
export interface LedgerChainStore {
  /** The UTC day of the ledger's first transaction; null for an empty ledger. */
  firstLedgerDay(): Promise<string | null>;
  /** The newest chained day; null before the first. */
  lastLedgerDay(): Promise<LedgerDayRow | null>;
  /** Every chained day, oldest first. */
  listLedgerDays(): Promise<LedgerDayRow[]>;
  /** True while an open transaction started before `t` (it may still add entries dated before it). */
  openTransactionsStartedBefore(t: Date): Promise<boolean>;
  /** The stored rollup rows of a chained day, in account order. */
  storedLedgerRollup(day: string): Promise<LedgerRollupRow[]>;
  /**
   * Runs `fn` in one REPEATABLE READ transaction (the rollup rows and the entries' digest from one
   * snapshot), read-only when asked; all of it or none.
   */
  snapshot<T>(fn: (tx: LedgerChainTx) => Promise<T>, opts: { readOnly: boolean }): Promise<T>;
}

export interface LedgerChainTx {
  /** The day's rollup computed from its raw entries, in account order. */
  computeLedgerRollup(day: string): Promise<LedgerRollupRow[]>;
  /** The day's entries in entry-id order. */
  forEachLedgerEntry(day: string, each: (e: LedgerEntryRecord) => void): Promise<void>;
  /** Appends a chained day and its rollup rows; fails when the day is chained already. */
  insertLedgerDay(d: LedgerDayRow, rows: readonly LedgerRollupRow[]): Promise<void>;
}

export class LedgerChainService {
  constructor(private readonly store: LedgerChainStore) {}

  /** Rolls up and chains every closed day not chained yet, oldest first; returns those days. */
  async rollUpClosedDays(now: Date): Promise<string[]> {
    const first = await this.store.firstLedgerDay();
    if (first === null) return [];
    const last = await this.store.lastLedgerDay();
    let day = last ? addDays(last.day, 1) : first;
    let prevHash = last?.hash ?? LEDGER_GENESIS_HASH;
    const chained: string[] = [];
    for (;;) {
      const end = dayStart(addDays(day, 1));
      if (end.getTime() + LEDGER_DAY_CLOSE_MARGIN_MS > now.getTime()) break;
      if (await this.store.openTransactionsStartedBefore(end)) break;
      prevHash = await this.chainDay(day, prevHash);
      chained.push(day);
      day = addDays(day, 1);
    }
    return chained;
  }

  /**
   * Rolls one day up and appends it to the chain, in one REPEATABLE READ transaction (rollup rows and
   * digest from one snapshot). A day chained meanwhile by another instance fails on ledger_days' key.
   */
  private async chainDay(day: string, prevHash: string): Promise<string> {
    return this.store.snapshot(async (tx) => {
      const rows = await tx.computeLedgerRollup(day);
      const digest = new LedgerEntriesDigest();
      await tx.forEachLedgerEntry(day, (e) => digest.update(e));
      const entriesDigest = digest.hex();
      const hash = ledgerDayHash(prevHash, { day, entries: digest.entries, entriesDigest, rows });
      await tx.insertLedgerDay({ day, entries: digest.entries, entries_digest: entriesDigest, prev_hash: prevHash, hash }, rows);
      return hash;
    }, { readOnly: false });
  }

  /**
   * Recomputes the chain from genesis: each day must follow the previous one without a gap, link to its
   * hash, and hash to its stored value from its rollup rows and digest; and (the raw entries being kept)
   * its rollup rows and digest must match the day's ledger entries.
   */
  async verify(): Promise<LedgerVerifyReport> {
    const days = await this.store.listLedgerDays();
    const report: LedgerVerifyReport = {
      ok: true,
      days_verified: 0,
      first_day: days[0]?.day ?? null,
      last_day: days.at(-1)?.day ?? null,
      head_hash: LEDGER_GENESIS_HASH,
      broken: null,
    };
    const fail = (day: string, reason: string): LedgerVerifyReport => ({ ...report, ok: false, broken: { day, reason } });

    let expectedDay = await this.store.firstLedgerDay();
    let prevHash = LEDGER_GENESIS_HASH;
    for (const d of days) {
      if (expectedDay !== null && d.day !== expectedDay) {
        return d.day > expectedDay
          ? fail(expectedDay, `the day is missing from the chain (the next chained day is ${d.day})`)
          : fail(d.day, `the day is out of sequence: the chain should go on with ${expectedDay}`);
      }
      if (d.prev_hash !== prevHash) return fail(d.day, `prev_hash ${d.prev_hash} does not match the previous day's hash ${prevHash}`);
      const stored = await this.store.storedLedgerRollup(d.day);
      const recomputed = ledgerDayHash(prevHash, { day: d.day, entries: d.entries, entriesDigest: d.entries_digest, rows: stored });
      if (recomputed !== d.hash) {
        return fail(d.day, `the stored hash ${d.hash} does not match the day's rollup rows and digest (recomputed ${recomputed}): a rollup row, the digest or the hash was changed`);
      }
      const fromEntries = await this.recompute(d.day);
      if (!sameRollupRows(stored, fromEntries.rows)) {
        return fail(d.day, `the rollup rows differ from the day's ledger entries (${describeDifference(stored, fromEntries.rows)})`);
      }
      if (fromEntries.entries !== d.entries || fromEntries.digest !== d.entries_digest) {
        return fail(d.day, `the day's ledger entries no longer match their digest (${fromEntries.entries} entries now, ${d.entries} when chained)`);
      }
      report.days_verified += 1;
      report.head_hash = d.hash;
      prevHash = d.hash;
      expectedDay = addDays(d.day, 1);
    }
    return report;
  }

  /** The day's rollup and digest, recomputed from its raw entries (one snapshot). */
  private async recompute(day: string): Promise<{ rows: LedgerRollupRow[]; entries: number; digest: string }> {
    return this.store.snapshot(async (tx) => {
      const rows = await tx.computeLedgerRollup(day);
      const digest = new LedgerEntriesDigest();
      await tx.forEachLedgerEntry(day, (e) => digest.update(e));
      return { rows, entries: digest.entries, digest: digest.hex() };
    }, { readOnly: true });
  }
}

/** The first account whose stored rollup differs from the recomputed one, in words. */
function describeDifference(stored: readonly LedgerRollupRow[], computed: readonly LedgerRollupRow[]): string {
  const byAccount = new Map(computed.map((r) => [r.account_id, r]));
  for (const s of stored) {
    const c = byAccount.get(s.account_id);
    if (!c) return `account ${s.account_id} has a rollup row but no entries`;
    if (!sameRollupRows([s], [c])) return `account ${s.account_id}: stored ${rowText(s)}, entries give ${rowText(c)}`;
    byAccount.delete(s.account_id);
  }
  const missing = byAccount.values().next();
  return missing.done ? 'same figures, different accounts' : `account ${missing.value.account_id} has entries but no rollup row`;
}

function rowText(r: LedgerRollupRow): string {
  return `${r.entries} entries, debits ${r.debits_micro}, credits ${r.credits_micro}, net ${r.net_micro}`;
}
