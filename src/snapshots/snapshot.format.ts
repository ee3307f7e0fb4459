// The snapshot format: a CAR file of IPLD blocks (DAG-CBOR, CIDv1, sha2-256), which IPFS and Filecoin
// take as is. Its single root is the manifest:
//
//   { format, kind, day, created_at, schema_version, previous, parts, ledger, epochs, signer, signature }
//
//   parts[i]  = { name, table, columns, rows, bytes, sha256, chunks: [CID, ...] }: a table's rows, cut into
//               chunk blocks of at most CHUNK_TARGET_BYTES, each chunk a DAG-CBOR array of rows, each row
//               an array of PostgreSQL text values (null for NULL) in `columns` order. `sha256` is the
//               hash of the part's chunk blocks' bytes, concatenated in order; `bytes` their length.
//   previous  = the root CID of the snapshot before this one, as text (null for the first): snapshots form a
//               chain. Text, not an IPLD link: a link would make IPFS pin and export the whole chain with
//               every snapshot, where each snapshot must stand alone.
//   ledger    = the day's link in the ledger's hash chain ({ day, prev_hash, hash }), or null.
//   epochs    = contribution epochs sealed here: [{ epoch, merkle_root, nodes, points }].
//   signature = the network key's EIP-191 signature over `resultity/v1/snapshot\n<CID of the manifest
//               without its signature field>`; `signer` (inside what is signed) is the network address.
//
// Text values, not typed ones: they are exactly what PostgreSQL prints and reads back (COPY's text
// format), so a restore reproduces every row bit for bit, whatever its type (timestamps with
// microseconds, bytea, jsonb), and a third party reads them with any CBOR decoder.
import { createHash } from 'node:crypto';
import * as dagCbor from '@ipld/dag-cbor';
import { CID } from 'multiformats/cid';
import * as Digest from 'multiformats/hashes/digest';
import { sha256 as sha256Hasher } from 'multiformats/hashes/sha2';
import { z } from 'zod';
import { recoverPersonal, signPersonal, type Address } from '../domain/signatures.js';

export const SNAPSHOT_FORMAT = 'resultity-snapshot/1';
const SIGNING_TAG = 'resultity/v1/snapshot';

/**
 * Chunks are cut near this size: well under the 1 MiB that IPFS peers exchange as one block (Bitswap),
 * and large enough that block overhead (a CID and a CAR section header each) stays under 0.1%.
 */
export const CHUNK_TARGET_BYTES = 256 * 1024;

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
  format: typeof SNAPSHOT_FORMAT;
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

export function cidOf(bytes: Uint8Array): CID {
  return CID.createV1(dagCbor.code, Digest.create(sha256Hasher.code, createHash('sha256').update(bytes).digest()));
}

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
    format: z.literal(SNAPSHOT_FORMAT),
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
  .strict();

/** Decodes and checks the manifest block's shape; throws a message naming what is wrong. */
export function decodeManifest(bytes: Uint8Array): Manifest {
  const parsed = manifestSchema.safeParse(dagCbor.decode(bytes));
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`not a ${SNAPSHOT_FORMAT} manifest: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return parsed.data as Manifest;
}

/** Decodes a chunk block: an array of rows of text-or-null cells, each `width` wide. */
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
