// The snapshot format: a CAR file of IPLD blocks (CIDv1, sha2-256), which IPFS and Filecoin take as is.
// Its single root is the manifest, a DAG-CBOR block:
//
//   { format, kind, day, created_at, schema_version, previous, parts, ledger, epochs, signer, signature }
//
//   format    = 'resultity-snapshot/3' (this version writes it; it still reads 'resultity-snapshot/1' and /2).
//               Format 3 differs from 2 only in the order of the raw job parts' rows (jobs, job_attempts:
//               primary-key order, read without a sort, where 2 had them by time); everything verify
//               checks is the same.
//   parts[i]  = { name, table, columns, encoding, rows, bytes, sha256, chunks: [CID, ...] }: a table's rows.
//               encoding 'postgresql-copy-text': the rows exactly as PostgreSQL's `COPY (SELECT columns ...)
//               TO STDOUT` prints them (text format: a line per row, tab-separated values in `columns`
//               order, \N for NULL, backslash escapes; see copy-text.ts), cut into `raw` blocks (multicodec
//               0x55) of at most CHUNK_MAX_BYTES, each ending at a row's end. `sha256` is the hash of the
//               part's bytes (its chunks concatenated in order), `bytes` their length, `rows` their lines.
//               (Format 1, read only: no `encoding`; chunks are DAG-CBOR arrays of rows of text-or-null.)
//   previous  = the root CID of the snapshot before this one, as text (null for the first): snapshots form a
//               chain. Text, not an IPLD link: a link would make IPFS pin and export the whole chain with
//               every snapshot, where each snapshot must stand alone.
//   ledger    = the day's link in the ledger's hash chain ({ day, prev_hash, hash }), or null.
//   epochs    = contribution epochs sealed here: [{ epoch, merkle_root, nodes, points }].
//   signature = the network key's EIP-191 signature over `resultity/v1/snapshot\n<CID of the manifest
//               without its signature field>`; `signer` (inside what is signed) is the network address.
//
// Text values, not typed ones: they are exactly what PostgreSQL prints and reads back, so a restore
// reproduces every row bit for bit, whatever its type (timestamps with microseconds, bytea, jsonb), and
// export and restore hand PostgreSQL's own bytes through untouched (COPY TO, COPY FROM): nothing is decoded
// or encoded per value on the way, which is what makes export run near the speed of hashing.
import { createHash } from 'node:crypto';
import * as dagCbor from '@ipld/dag-cbor';
import { CID } from 'multiformats/cid';
import * as raw from 'multiformats/codecs/raw';
import * as Digest from 'multiformats/hashes/digest';
import { sha256 as sha256Hasher } from 'multiformats/hashes/sha2';
import { z } from 'zod';
import { recoverPersonal, signPersonal, type Address } from '../domain/signatures.js';

export const SNAPSHOT_FORMAT = 'resultity-snapshot/3';
/** The first format (parts as DAG-CBOR rows): still read (verify, restore), since a chain restores from its start. */
export const SNAPSHOT_FORMAT_1 = 'resultity-snapshot/1';
/** COPY-text parts, raw job rows by time: still read (verify, restore, --against-db). */
export const SNAPSHOT_FORMAT_2 = 'resultity-snapshot/2';
export const READ_FORMATS = [SNAPSHOT_FORMAT_1, SNAPSHOT_FORMAT_2, SNAPSHOT_FORMAT] as const;
export type SnapshotFormat = (typeof READ_FORMATS)[number];
/** A part's encoding in format 2 (the only one it has). */
export const PART_ENCODING = 'postgresql-copy-text';
const SIGNING_TAG = 'resultity/v1/snapshot';

/**
 * A part's chunks are at most this size, cut at the last row's end that fits: the 1 MiB that IPFS takes as
 * one block (Kubo's `block put` limit, what Bitswap peers exchange), and few enough blocks that their
 * overhead (a CID and a CAR section header each, and one hash pass) is negligible.
 */
export const CHUNK_MAX_BYTES = 1024 * 1024;

export type Cell = string | null;
export type Row = Cell[];

export interface Block {
  cid: CID;
  bytes: Uint8Array;
}

export interface PartEntry {
  name: string;
  table: string;
  columns: string[];
  /** Formats 2 and 3: always PART_ENCODING. Format 1 parts have none (DAG-CBOR rows). */
  encoding?: typeof PART_ENCODING;
  rows: number;
  bytes: number;
  sha256: string;
  chunks: CID[];
}

export interface LedgerLink {
  day: string;
  prev_hash: string;
  hash: string;
}

export interface EpochSeal {
  epoch: number;
  merkle_root: string;
  nodes: number;
  points: number;
}

export type SnapshotKind = 'day' | 'state';

export interface UnsignedManifest {
  format: SnapshotFormat;
  kind: SnapshotKind;
  day: string | null;
  created_at: string;
  schema_version: string;
  previous: string | null;
  parts: PartEntry[];
  ledger: LedgerLink | null;
  epochs: EpochSeal[];
  signer: Address;
}

export interface Manifest extends UnsignedManifest {
  signature: string;
}

/** Encodes `value` as a DAG-CBOR block with its CIDv1 (sha2-256): node's native hash, synchronously. */
export function encodeBlock(value: unknown): Block {
  const bytes = dagCbor.encode(value);
  return { cid: cidOf(bytes), bytes };
}

export function cidOf(bytes: Uint8Array, codec: number = dagCbor.code): CID {
  return CID.createV1(codec, Digest.create(sha256Hasher.code, createHash('sha256').update(bytes).digest()));
}

/** A `raw` block (a chunk of a format-2 part): the bytes as they are, with their CIDv1 (raw, sha2-256). */
export function rawBlock(bytes: Uint8Array): Block {
  return { cid: cidOf(bytes, raw.code), bytes };
}

export const RAW_CODEC = raw.code;
export const DAG_CBOR_CODEC = dagCbor.code;

/** True when `bytes` hash to the digest `cid` names (sha2-256 only: the one hash this format writes). */
export function blockMatches(cid: CID, bytes: Uint8Array): boolean {
  if (cid.multihash.code !== sha256Hasher.code) return false;
  const digest = createHash('sha256').update(bytes).digest();
  return Buffer.compare(digest, cid.multihash.digest) === 0;
}

export function signingMessage(unsigned: UnsignedManifest): string {
  return `${SIGNING_TAG}\n${encodeBlock(unsigned).cid.toString()}`;
}

export function signManifest(networkKey: string, unsigned: UnsignedManifest): Manifest {
  return { ...unsigned, signature: signPersonal(networkKey, signingMessage(unsigned)) };
}

/** The address whose key signed the manifest (null: a malformed signature). */
export function manifestSigner(m: Manifest): Address | null {
  const { signature, ...unsigned } = m;
  return recoverPersonal(signingMessage(unsigned), signature);
}

const cidSchema = z.custom<CID>((v) => CID.asCID(v) !== null, 'a CID').transform((v) => CID.asCID(v)!);
const cidText = z.string().refine((s) => /^b[a-z2-7]+$/.test(s) && CID.parse(s).toString() === s, 'a CIDv1 in base32');
const hex32 = z.string().regex(/^[0-9a-f]{64}$/);
const daySchema = z.string().regex(/^\d{4}-\d{2}-\d{2}$/);

const manifestSchema = z
  .object({
    format: z.enum(READ_FORMATS),
    kind: z.enum(['day', 'state']),
    day: daySchema.nullable(),
    created_at: z.string(),
    schema_version: z.string(),
    previous: cidText.nullable(),
    parts: z.array(
      z
        .object({
          name: z.string(),
          table: z.string(),
          columns: z.array(z.string()),
          encoding: z.literal(PART_ENCODING).optional(),
          rows: z.number().int().min(0),
          bytes: z.number().int().min(0),
          sha256: hex32,
          chunks: z.array(cidSchema),
        })
        .strict(),
    ),
    ledger: z.object({ day: daySchema, prev_hash: hex32, hash: hex32 }).strict().nullable(),
    epochs: z.array(
      z.object({ epoch: z.number().int().min(0), merkle_root: z.string().regex(/^0x[0-9a-f]{64}$/), nodes: z.number().int().min(0), points: z.number().int().min(0) }).strict(),
    ),
    signer: z.string().regex(/^0x[0-9a-f]{40}$/),
    signature: z.string().regex(/^0x[0-9a-f]{130}$/),
  })
  .strict()
  .superRefine((m, ctx) => {
    // Formats 2 and 3 name their parts' encoding; format 1 had none to name.
    for (const [i, p] of m.parts.entries()) {
      if ((m.format !== SNAPSHOT_FORMAT_1) !== (p.encoding !== undefined)) {
        ctx.addIssue({ code: 'custom', path: ['parts', i, 'encoding'], message: m.format !== SNAPSHOT_FORMAT_1 ? `a ${m.format} part names its encoding` : `a ${SNAPSHOT_FORMAT_1} part has no encoding` });
      }
    }
  });

/** Decodes and checks the manifest block's shape; throws a message naming what is wrong. */
export function decodeManifest(bytes: Uint8Array): Manifest {
  const value: unknown = dagCbor.decode(bytes);
  const format = typeof value === 'object' && value !== null && 'format' in value ? value.format : undefined;
  if (!READ_FORMATS.includes(format as SnapshotFormat)) {
    throw new Error(`manifest: snapshot format ${JSON.stringify(format ?? null)} is not one this version reads (${READ_FORMATS.join(', ')})`);
  }
  const parsed = manifestSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`not a ${String(format)} manifest: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return parsed.data as Manifest;
}

/** Decodes a format-1 chunk block: an array of rows of text-or-null cells, each `width` wide. */
export function decodeChunk(bytes: Uint8Array, width: number): Row[] {
  const value: unknown = dagCbor.decode(bytes);
  if (!Array.isArray(value)) throw new Error('a chunk is not an array of rows');
  for (const row of value as unknown[]) {
    if (!Array.isArray(row) || row.length !== width || !row.every((c) => c === null || typeof c === 'string')) {
      throw new Error(`a chunk row is not ${width} text-or-null values`);
    }
  }
  return value as Row[];
}

/** Column name → index, for reading a part's rows by name. */
export function columnIndex(part: Pick<PartEntry, 'name' | 'columns'>, names: readonly string[]): number[] {
  return names.map((n) => {
    const i = part.columns.indexOf(n);
    if (i < 0) throw new Error(`part ${part.name} has no column ${n}`);
    return i;
  });
}
