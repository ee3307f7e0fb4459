// Verifying a snapshot from its CAR alone, trusting nothing but the network address: every block against
// its CID, the manifest's shape and signature, every part against the manifest (chunks present, rows,
// sha256), the ledger day's hash recomputed from the day's entries, the epochs' Merkle roots recomputed
// from their records, and, given the previous snapshot, the chain link. No database.
import { createHash } from 'node:crypto';
import { LedgerEntriesDigest, ledgerDayHash, sameRollupRows, type LedgerRollupRow } from '../domain/ledger-chain.js';
import type { CarContents } from './car-file.js';
import { columnIndex, DAG_CBOR_CODEC, decodeChunk, decodeManifest, manifestSigner, PART_ENCODING, RAW_CODEC, type Manifest, type PartEntry, type Row } from './snapshot.format.js';
import { countRows, parseCopyText } from './copy-text.js';
import { epochTree, type NodePoints } from './epoch-merkle.js';
import { addDays } from '../domain/job-history.js';

export type CheckName = 'blocks' | 'manifest' | 'signature' | 'parts' | 'ledger' | 'epochs' | 'chain';

export interface VerifyCheck {
  check: CheckName;
  /** null: not checked (what it needs is missing, and `detail` says what). */
  ok: boolean | null;
  detail: string;
}

export interface VerifyReport {
  ok: boolean;
  cid: string | null;
  kind: string | null;
  day: string | null;
  signer: string | null;
  bytes: number;
  checks: VerifyCheck[];
  /** Every failure, each naming what failed. */
  problems: string[];
}

export interface VerifyOptions {
  /** The network address the signature must be from; without it, the signer is reported, not trusted. */
  networkAddress?: string;
  /** The previous snapshot in the chain, to check the link to it. */
  previous?: { cid: string; manifest: Manifest };
}

/**
 * A part's chunk blocks, in order; throws naming the first that is missing or not of the part's codec
 * (format 2: raw; format 1: DAG-CBOR).
 */
export function partChunks(car: CarContents, part: PartEntry): Uint8Array[] {
  const codec = part.encoding === PART_ENCODING ? RAW_CODEC : DAG_CBOR_CODEC;
  return part.chunks.map((cid) => {
    const bytes = car.blocks.get(cid.toString());
    if (!bytes) throw new Error(`part ${part.name}: chunk ${cid.toString()} is missing`);
    if (cid.code !== codec) throw new Error(`part ${part.name}: chunk ${cid.toString()} is not a ${codec === RAW_CODEC ? 'raw' : 'DAG-CBOR'} block`);
    return bytes;
  });
}

/** A part's rows of text values, from the CAR's blocks; throws naming the part and what is wrong. */
export function partRows(car: CarContents, part: PartEntry): Row[] {
  const chunks = partChunks(car, part);
  if (part.encoding === PART_ENCODING) {
    try {
      return parseCopyText(Buffer.concat(chunks), part.columns.length);
    } catch (err) {
      throw new Error(`part ${part.name}: ${(err as Error).message}`, { cause: err });
    }
  }
  const rows: Row[] = [];
  for (const bytes of chunks) for (const row of decodeChunk(bytes, part.columns.length)) rows.push(row);
  return rows;
}

/** The parts whose values verify reads (the ledger recomputation, the epochs' roots); the others are hashed and counted only. */
const PARSED_PARTS = new Set(['ledger_transactions', 'ledger_entries', 'ledger_rollups', 'ledger_days', 'rcp_records']);

/**
 * Checks one part against the manifest: chunks present and of the part's codec, sha256 and length of its
 * bytes, its rows (format 2: counted from newlines, and parsed when `parse`; format 1: decoded). Returns
 * the rows when parsed, or a problem naming the part.
 */
function checkPart(car: CarContents, part: PartEntry, parse: boolean): { problem: string } | { rows: Row[] | null } {
  const chunks = partChunks(car, part);
  const hash = createHash('sha256');
  let bytes = 0;
  let counted = 0;
  for (const block of chunks) {
    hash.update(block);
    bytes += block.length;
    if (part.encoding === PART_ENCODING) counted += countRows(block);
  }
  const copyText = part.encoding === PART_ENCODING;
  const rows = copyText && !parse ? null : partRows(car, part);
  if (rows) counted = rows.length;
  const digest = hash.digest('hex');
  if (counted !== part.rows) return { problem: `part ${part.name}: ${counted} rows, the manifest says ${part.rows}` };
  if (digest !== part.sha256 || bytes !== part.bytes) return { problem: `part ${part.name}: sha256 ${digest} (${bytes} bytes) differs from the manifest's ${part.sha256} (${part.bytes} bytes)` };
  if (copyText && bytes > 0 && chunks.at(-1)!.at(-1) !== 0x0a) return { problem: `part ${part.name}: its text does not end with a row's newline` };
  return { rows };
}

/** The root manifest of a CAR, decoded and shape-checked. Throws naming what is wrong. */
export function rootManifest(car: CarContents): { cid: string; manifest: Manifest } {
  if (car.roots.length !== 1) throw new Error(`manifest: a snapshot has one root, this CAR has ${car.roots.length}`);
  const cid = car.roots[0]!.toString();
  const bytes = car.blocks.get(cid);
  if (!bytes) throw new Error(car.mismatched.includes(cid) ? `manifest: block ${cid} does not match its CID` : `manifest: root block ${cid} is missing`);
  return { cid, manifest: decodeManifest(bytes) };
}

export function verifySnapshot(car: CarContents, opts: VerifyOptions = {}): VerifyReport {
  const report: VerifyReport = { ok: false, cid: null, kind: null, day: null, signer: null, bytes: car.bytes, checks: [], problems: [] };
  const record = (check: CheckName, problems: string[], okDetail: string) => {
    report.checks.push({ check, ok: problems.length === 0, detail: problems.length === 0 ? okDetail : problems.join('; ') });
    report.problems.push(...problems);
  };
  const skip = (check: CheckName, detail: string) => report.checks.push({ check, ok: null, detail });

  record('blocks', car.mismatched.map((cid) => `block ${cid} does not match its CID`), `${car.blocks.size} blocks match their CIDs`);

  let root: { cid: string; manifest: Manifest };
  try {
    root = rootManifest(car);
  } catch (err) {
    record('manifest', [(err as Error).message], '');
    return report;
  }
  const m = root.manifest;
  Object.assign(report, { cid: root.cid, kind: m.kind, day: m.day, signer: m.signer });
  record('manifest', m.kind === 'day' && m.day === null ? ['manifest: a day snapshot names no day'] : [], `${m.format}: ${m.kind} snapshot${m.day ? ` of ${m.day}` : ''}, schema ${m.schema_version}`);

  const signer = manifestSigner(m);
  const signatureProblems: string[] = [];
  if (signer !== m.signer) signatureProblems.push(`signature: the manifest's signature is not ${m.signer}'s over this manifest (it recovers to ${signer ?? 'nothing'}): the manifest or its signature was changed`);
  else if (opts.networkAddress && signer !== opts.networkAddress.toLowerCase()) signatureProblems.push(`signature: signed by ${signer}, not by the network address ${opts.networkAddress.toLowerCase()}`);
  record('signature', signatureProblems, opts.networkAddress ? `signed by the network key ${m.signer}` : `signed by ${m.signer} (no network address given to pin it)`);

  const rowsByPart = new Map<string, Row[]>();
  const partProblems: string[] = [];
  for (const part of m.parts) {
    try {
      const checked = checkPart(car, part, PARSED_PARTS.has(part.name));
      if ('problem' in checked) partProblems.push(checked.problem);
      else if (checked.rows) rowsByPart.set(part.name, checked.rows);
    } catch (err) {
      partProblems.push((err as Error).message);
    }
  }
  record('parts', partProblems, `${m.parts.length} parts, ${m.parts.reduce((s, p) => s + p.rows, 0)} rows`);

  checkLedger(m, rowsByPart, record, skip);
  checkEpochs(m, rowsByPart, record, skip);
  checkChain(root.cid, m, opts.previous, record, skip);

  report.ok = report.problems.length === 0;
  return report;
}

type Record = (check: CheckName, problems: string[], okDetail: string) => void;
type Skip = (check: CheckName, detail: string) => void;

function part(m: Manifest, name: string): PartEntry | undefined {
  return m.parts.find((p) => p.name === name);
}

/** PostgreSQL's UTC text of a timestamptz ('2024-05-01 10:00:00.12+00') as the ledger digest writes it. */
export function ledgerTime(pgText: string): string {
  const t = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?\+00$/.exec(pgText);
  if (!t) throw new Error(`not a UTC timestamp: ${pgText}`);
  return `${t[1]}T${t[2]}.${(t[3] ?? '').padEnd(6, '0')}Z`;
}

function checkLedger(m: Manifest, rowsByPart: Map<string, Row[]>, record: Record, skip: Skip): void {
  if (m.kind !== 'day') return skip('ledger', 'a state snapshot carries no ledger day');
  const names = ['ledger_transactions', 'ledger_entries', 'ledger_rollups', 'ledger_days'];
  const parts = names.map((n) => part(m, n));
  if (parts.some((p) => !p) || names.some((n) => !rowsByPart.has(n))) return skip('ledger', 'a ledger part is missing or failed its check');
  const [txPart, entryPart, rollupPart, dayPart] = parts as PartEntry[];
  const days = rowsByPart.get('ledger_days')!;
  if (days.length === 0) {
    const problems = m.ledger !== null ? ['ledger: the manifest names a ledger day the snapshot does not hold'] : [];
    if (rowsByPart.get('ledger_entries')!.length > 0) problems.push(`ledger: entries of ${m.day} but no chained day`);
    return record('ledger', problems, `no ledger activity on ${m.day}`);
  }
  try {
    const [dDay, dEntries, dDigest, dPrev, dHash] = columnIndex(dayPart!, ['day', 'entries', 'entries_digest', 'prev_hash', 'hash']);
    const day = days[0]!;
    const hex = (c: string | null | undefined) => (c ?? '').replace(/^\\x/, '');
    const stored = { day: day[dDay!]!, entries: Number(day[dEntries!]), digest: hex(day[dDigest!]), prev: hex(day[dPrev!]), hash: hex(day[dHash!]) };

    const [tId, tKind, tJob, tMemo, tAt] = columnIndex(txPart!, ['id', 'kind', 'job_id', 'memo', 'created_at']);
    const txs = new Map(rowsByPart.get('ledger_transactions')!.map((t) => [t[tId!]!, t]));
    const [eId, eTxn, eAccount, eAmount] = columnIndex(entryPart!, ['id', 'txn_id', 'account_id', 'amount']);
    const digest = new LedgerEntriesDigest();
    const rollup = new Map<number, LedgerRollupRow>();
    const entries = [...rowsByPart.get('ledger_entries')!].sort((a, b) => Number(a[eId!]) - Number(b[eId!]));
    for (const e of entries) {
      const t = txs.get(e[eTxn!]!);
      if (!t) throw new Error(`ledger: entry ${e[eId!]} names transaction ${e[eTxn!]}, which the snapshot does not hold`);
      const amount = Number(e[eAmount!]);
      const account = Number(e[eAccount!]);
      digest.update({ id: Number(e[eId!]), txn_id: Number(e[eTxn!]), kind: t[tKind!]!, job_id: t[tJob!] ?? null, memo: t[tMemo!]!, created_at: ledgerTime(t[tAt!]!), account_id: account, amount });
      const r = rollup.get(account) ?? { account_id: account, entries: 0, debits_micro: 0, credits_micro: 0, net_micro: 0 };
      r.entries += 1;
      if (amount < 0) r.debits_micro -= amount;
      else r.credits_micro += amount;
      r.net_micro += amount;
      rollup.set(account, r);
    }
    const [rAccount, rEntries, rDebits, rCredits, rNet] = columnIndex(rollupPart!, ['account_id', 'entries', 'debits_micro', 'credits_micro', 'net_micro']);
    const storedRollup = rowsByPart.get('ledger_rollups')!.map((r) => ({
      account_id: Number(r[rAccount!]),
      entries: Number(r[rEntries!]),
      debits_micro: Number(r[rDebits!]),
      credits_micro: Number(r[rCredits!]),
      net_micro: Number(r[rNet!]),
    }));
    const problems: string[] = [];
    if (stored.day !== m.day) problems.push(`ledger: the chained day is ${stored.day}, the snapshot's is ${m.day}`);
    const entriesDigest = digest.hex();
    if (digest.entries !== stored.entries || entriesDigest !== stored.digest) {
      problems.push(`ledger: the day's ${digest.entries} entries hash to ${entriesDigest}, the chain recorded ${stored.entries} entries hashing to ${stored.digest}`);
    }
    if (!sameRollupRows(storedRollup, [...rollup.values()])) problems.push(`ledger: the day's rollup rows differ from its entries`);
    const recomputed = ledgerDayHash(stored.prev, { day: stored.day, entries: stored.entries, entriesDigest: stored.digest, rows: storedRollup });
    if (recomputed !== stored.hash) problems.push(`ledger: chain hash recomputed ${recomputed}, the day records ${stored.hash}`);
    if (!m.ledger || m.ledger.hash !== stored.hash || m.ledger.prev_hash !== stored.prev || m.ledger.day !== stored.day) {
      problems.push(`ledger: the manifest's ledger link differs from the day's chained row`);
    }
    record('ledger', problems, `chain hash ${stored.hash} recomputed from ${digest.entries} entries`);
  } catch (err) {
    record('ledger', [(err as Error).message], '');
  }
}

function checkEpochs(m: Manifest, rowsByPart: Map<string, Row[]>, record: Record, skip: Skip): void {
  if (m.epochs.length === 0) return skip('epochs', 'no contribution epoch sealed here');
  const p = part(m, 'rcp_records');
  const rows = rowsByPart.get('rcp_records');
  if (!p || !rows) return skip('epochs', 'the rcp_records part is missing or failed its check');
  const byEpoch = epochRecords(p, rows);
  const problems: string[] = [];
  for (const seal of m.epochs) {
    const t = epochTree(byEpoch.get(seal.epoch) ?? []);
    if (t.root !== seal.merkle_root || t.nodes !== seal.nodes || t.points !== seal.points) {
      problems.push(`epochs: epoch ${seal.epoch}'s records give root ${t.root} (${t.nodes} nodes, ${t.points} points), the manifest says ${seal.merkle_root} (${seal.nodes}, ${seal.points})`);
    }
  }
  const unsealed = [...byEpoch.keys()].filter((e) => !m.epochs.some((s) => s.epoch === e));
  if (unsealed.length > 0) problems.push(`epochs: records of epochs ${unsealed.join(', ')} that the manifest does not seal`);
  record('epochs', problems, `${m.epochs.length} epoch root(s) recomputed from their records`);
}

/** Points per node in each epoch, from an rcp_records part's rows: the leaves of the epochs' trees. */
export function epochRecords(part: PartEntry, rows: readonly Row[]): Map<number, NodePoints[]> {
  const [iNode, iEpoch, iPoints] = columnIndex(part, ['node_id', 'epoch', 'points']);
  const byEpoch = new Map<number, Map<string, number>>();
  for (const r of rows) {
    const epoch = Number(r[iEpoch!]);
    const nodes = byEpoch.get(epoch) ?? new Map<string, number>();
    nodes.set(r[iNode!]!, (nodes.get(r[iNode!]!) ?? 0) + Number(r[iPoints!]));
    byEpoch.set(epoch, nodes);
  }
  return new Map([...byEpoch].map(([epoch, nodes]) => [epoch, [...nodes].map(([node_id, points]) => ({ node_id, points }))]));
}

function checkChain(cid: string, m: Manifest, previous: VerifyOptions['previous'], record: Record, skip: Skip): void {
  if (m.previous === null) {
    return record('chain', previous ? [`chain: the snapshot names no previous one, but ${previous.cid} was given as its previous`] : [], 'the first snapshot of its chain');
  }
  if (!previous) return skip('chain', `links to ${m.previous} (not checked: the previous snapshot was not given or not found)`);
  const problems: string[] = [];
  if (m.previous !== previous.cid) problems.push(`chain: ${cid} links to ${m.previous}, not to the previous snapshot ${previous.cid}`);
  const p = previous.manifest;
  if (p.signer !== m.signer) problems.push(`chain: the previous snapshot is signed by ${p.signer}, this one by ${m.signer}`);
  // Ledger days are chained without gaps: when the previous snapshot holds the ledger day before this
  // one's, this day's link must be that day's hash.
  if (m.ledger && p.ledger && p.ledger.day === addDays(m.ledger.day, -1) && m.ledger.prev_hash !== p.ledger.hash) {
    problems.push(`chain: the ledger day ${m.ledger.day} links to ${m.ledger.prev_hash}, the previous snapshot's ledger head is ${p.ledger.hash}`);
  }
  record('chain', problems, `links to ${previous.cid}`);
}
