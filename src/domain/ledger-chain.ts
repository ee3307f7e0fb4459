// The ledger's daily hash chain (migrations/0011, ledger_days). For each UTC day, from the ledger's first:
//
//   entries_digest = sha256 over the day's entries in entry-id order, one canonical JSON line each
//                    ([entry id, transaction id, transaction kind, job id, memo, transaction time,
//                      account id, amount], time as YYYY-MM-DDTHH:MM:SS.ffffffZ);
//   hash           = sha256(prev_hash || canonical JSON of { day, entries, entries_digest, rollup }),
//                    rollup = [[account id, entries, debits, credits, net], ...] in account order;
//   prev_hash      = the previous day's hash, or GENESIS (32 zero bytes) for the first day.
//
// So a day's hash commits to its rollup rows and, through the digest, to every entry behind them; and
// to every earlier day through prev_hash. Changing a stored rollup row, digest or hash breaks the chain
// at that day (its recomputed hash differs, or the next day's prev_hash no longer matches).
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, concatBytes, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { canonicalJson } from './signatures.js';

export const LEDGER_GENESIS_HASH = '00'.repeat(32);

/** One ledger account's movements on one day. `net` = credits - debits (debits are the negative amounts, as a positive sum). */
export interface LedgerRollupRow {
  account_id: number;
  entries: number;
  debits_micro: number;
  credits_micro: number;
  net_micro: number;
}

/** One ledger entry with its transaction, as the digest reads it. */
export interface LedgerEntryRecord {
  id: number;
  txn_id: number;
  kind: string;
  job_id: string | null;
  memo: string;
  /** The transaction's time, UTC with microseconds: YYYY-MM-DDTHH:MM:SS.ffffffZ. */
  created_at: string;
  account_id: number;
  amount: number;
}

/** The incremental sha256 of a day's entries; feed them in id order. */
export class LedgerEntriesDigest {
  private readonly hash = sha256.create();
  private count = 0;

  update(e: LedgerEntryRecord): void {
    this.hash.update(utf8ToBytes(`${canonicalJson([e.id, e.txn_id, e.kind, e.job_id, e.memo, e.created_at, e.account_id, e.amount])}\n`));
    this.count += 1;
  }

  get entries(): number {
    return this.count;
  }

  hex(): string {
    return bytesToHex(this.hash.digest());
  }
}

export interface LedgerDayContent {
  day: string;
  entries: number;
  entriesDigest: string;
  rows: readonly LedgerRollupRow[];
}

export function ledgerDayHash(prevHash: string, d: LedgerDayContent): string {
  const rollup = [...d.rows]
    .sort((a, b) => a.account_id - b.account_id)
    .map((r) => [r.account_id, r.entries, r.debits_micro, r.credits_micro, r.net_micro]);
  const body = canonicalJson({ day: d.day, entries: d.entries, entries_digest: d.entriesDigest, rollup });
  return bytesToHex(sha256(concatBytes(hexToBytes(prevHash), utf8ToBytes(body))));
}

/** Two days' rollup rows are the same (same accounts, same figures), in any order. */
export function sameRollupRows(a: readonly LedgerRollupRow[], b: readonly LedgerRollupRow[]): boolean {
  const key = (rows: readonly LedgerRollupRow[]) =>
    canonicalJson([...rows].sort((x, y) => x.account_id - y.account_id).map((r) => [r.account_id, r.entries, r.debits_micro, r.credits_micro, r.net_micro]));
  return key(a) === key(b);
}
