// Envelope encryption of payloads at rest (issue 10, part 2), with node:crypto's AES-256-GCM.
//   master keys   from the environment (PAYLOAD_MASTER_KEYS), by version; they only wrap namespace keys.
//   namespace key 32 random bytes per namespace, stored wrapped (AES-256-GCM under the current master key,
//                 bound to the namespace id) in PostgreSQL.
//   document key  HKDF-SHA256(namespace key, salt, job id): the salt is random per document, stored in
//                 PostgreSQL (payload_keys) and only named by the document. Deleting a job's salts shreds
//                 that job alone; destroying the namespace key shreds the namespace. Either way a copy of
//                 the document taken earlier is unreadable from that commit on, on every instance.
//   held result   a zero-plan result waiting in Redis (redis/zero-holds.repository.ts): sealed the same way,
//                 its salt inside its own box (nothing is written to PostgreSQL on the completion path).
// One AES-GCM operation per document (plus an HKDF, a few HMACs); the salts of concurrent seals are
// inserted together (one statement per batch, common/group-commit.ts) while their documents are written to
// MongoDB (the key's id is made here, so neither waits for the other). Rotation re-wraps namespace keys;
// no payload is re-encrypted.
//
// Why a shred is at once everywhere: no read opens with a key remembered in memory. A read of documents
// fetches their salts and their namespace's wrapped key in one statement (the lookup it always made), and
// a held result's read fetches the wrapped key (one primary-key lookup, once per held result: it is read
// once). Only sealing keeps unwrapped keys in memory (KEY_CACHE_MS), dropped on every instance at a
// namespace's change (the catalogue's NOTIFY, postgres/catalog-changes.ts, wired to onCatalogChange); a
// document sealed meanwhile under a shredded key is unreadable anyway (its namespace's key is gone).
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { GroupCommit } from '../common/group-commit.js';
import type { PayloadCipher, Sealed } from '../mongo/payload-cipher.js';
import type { HeldResultCipher } from '../redis/zero-holds.repository.js';
import type { CatalogChange } from '../postgres/catalog-changes.js';
import type { NamespaceKeyRow, PayloadSaltRow } from '../postgres/payload-keys.repository.js';

const IV = 12;
const TAG = 16;
/**
 * How long an unwrapped namespace key stays in memory for sealing, should a namespace's change announcement
 * be missed (the listener's reconnection drops them all too). Reads never use it.
 */
const KEY_CACHE_MS = 30_000;
const KEY_CACHE_MAX = 10_000;

function gcmSeal(key: Buffer, plaintext: Buffer, aad: string): Buffer {
  const iv = randomBytes(IV);
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(Buffer.from(aad));
  const ct = Buffer.concat([c.update(plaintext), c.final()]);
  return Buffer.concat([iv, c.getAuthTag(), ct]);
}

/** The plaintext, or null when the box was not sealed under this key and AAD (GCM's tag fails). */
function gcmOpen(key: Buffer, box: Buffer, aad: string): Buffer | null {
  if (box.length < IV + TAG) return null;
  try {
    const d = createDecipheriv('aes-256-gcm', key, box.subarray(0, IV));
    d.setAAD(Buffer.from(aad));
    d.setAuthTag(box.subarray(IV, IV + TAG));
    return Buffer.concat([d.update(box.subarray(IV + TAG)), d.final()]);
  } catch {
    return null;
  }
}

const wrapAad = (namespaceId: string) => `resultity namespace key ${namespaceId}`;
const docAad = (namespaceId: string, jobId: string, k: string) => `resultity payload ${namespaceId} ${jobId} ${k}`;
const heldAad = (namespaceId: string, jobId: string) => `resultity held result ${namespaceId} ${jobId}`;
const SALT = 32;

function documentKey(nsKey: Buffer, salt: Buffer, jobId: string): Buffer {
  return Buffer.from(hkdfSync('sha256', nsKey, salt, `resultity payload key ${jobId}`, 32));
}

export class NamespaceShreddedError extends Error {
  constructor(namespaceId: string) {
    super(`namespace ${namespaceId} has no key: it was deleted`);
  }
}

/**
 * What the service needs from PostgreSQL: the port its fast tests fake (test/fakes/payload-keys.store.ts);
 * on the engine it is postgres/payload-keys.store.ts.
 */
export interface PayloadKeysStore {
  findNamespaceKey(namespaceId: string): Promise<NamespaceKeyRow | null>;
  /** Stores a namespace's first key unless one exists (a concurrent first seal's): the row that stands. */
  insertNamespaceKey(namespaceId: string, masterVersion: number, wrapped: Buffer): Promise<NamespaceKeyRow | null>;
  /** A page of keys wrapped under another master version than `current` (shredded ones excepted). */
  listKeysToRewrap(current: number, limit: number): Promise<NamespaceKeyRow[]>;
  /** Replaces a key's wrapping if it is still as read; false when it changed meanwhile. */
  replaceWrappedKey(row: NamespaceKeyRow, masterVersion: number, wrapped: Buffer): Promise<boolean>;
  /** Destroys the namespace's key and its documents' salts; false when it had none to destroy. */
  shredNamespaceKey(namespaceId: string): Promise<boolean>;
  insertPayloadSalts(rows: ReadonlyArray<{ id: string; jobId: string; namespaceId: string; salt: Buffer }>): Promise<void>;
  /** The salts of these documents that still exist, each with its namespace's key as wrapped now. */
  findPayloadSalts(ids: readonly string[]): Promise<Map<string, PayloadSaltRow>>;
}

export class PayloadKeys implements PayloadCipher, HeldResultCipher {
  private readonly current: number;
  /** Unwrapped keys for sealing only (see the head of this file). */
  private readonly cache = new Map<string, { key: Buffer | null; at: number }>();
  /** Bumped by every announced change: a key looked up before a change is not kept. */
  private generation = 0;
  /** Lookups of sealing keys on their way, by namespace. */
  private readonly lookups = new Map<string, Promise<Buffer | null>>();
  private readonly salts: GroupCommit<{ id: string; jobId: string; namespaceId: string; salt: Buffer }, void>;

  constructor(
    private readonly d: { store: PayloadKeysStore; masterKeys: ReadonlyMap<number, Buffer>; logger: Logger },
  ) {
    if (d.masterKeys.size === 0) throw new Error('no master key');
    this.current = Math.max(...d.masterKeys.keys());
    this.salts = new GroupCommit<{ id: string; jobId: string; namespaceId: string; salt: Buffer }, void>(
      async (rows) => {
        await this.d.store.insertPayloadSalts(rows);
        return rows.map(() => ({ ok: true as const, value: undefined }));
      },
      { maxItems: 256, maxInFlight: 2, lingerMs: 0 },
    );
  }

  async seal(namespaceId: string, jobId: string, plaintext: Buffer): Promise<{ sealed: Sealed; stored: Promise<void> }> {
    const nsKey = await this.sealingKey(namespaceId);
    const salt = randomBytes(SALT);
    const k = randomUUID();
    // The key's row is written (grouped with concurrent ones) while the caller writes the document.
    const stored = this.salts.submit({ id: k, jobId, namespaceId, salt });
    return { sealed: { k, box: gcmSeal(documentKey(nsKey, salt, jobId), plaintext, docAad(namespaceId, jobId, k)) }, stored };
  }

  async open(items: ReadonlyArray<{ namespaceId: string; jobId: string; sealed: Sealed }>): Promise<Array<Buffer | null>> {
    if (items.length === 0) return [];
    const salts = await this.d.store.findPayloadSalts([...new Set(items.map((i) => i.sealed.k))]);
    // Each namespace's key as the lookup found it, unwrapped once for this read.
    const keys = new Map<string, Buffer>();
    const keyOf = (namespaceId: string, row: { masterVersion: number; wrapped: Buffer }) => {
      let key = keys.get(namespaceId);
      if (!key) keys.set(namespaceId, (key = this.unwrap(namespaceId, row.masterVersion, row.wrapped)));
      return key;
    };
    return items.map(({ namespaceId, jobId, sealed }) => {
      const row = salts.get(sealed.k);
      // A salt of another job or namespace than the document claims: refused (the AAD would fail too).
      if (!row || row.jobId !== jobId || row.namespaceId !== namespaceId) return null;
      return gcmOpen(documentKey(keyOf(namespaceId, row), row.salt, jobId), sealed.box, docAad(namespaceId, jobId, sealed.k));
    });
  }

  /** Seals a held result (zero plan, Redis): salt | iv | tag | ciphertext, under the namespace's key. */
  async sealHeld(namespaceId: string, jobId: string, plaintext: Buffer): Promise<Buffer> {
    const nsKey = await this.sealingKey(namespaceId);
    const salt = randomBytes(SALT);
    return Buffer.concat([salt, gcmSeal(documentKey(nsKey, salt, jobId), plaintext, heldAad(namespaceId, jobId))]);
  }

  /** Opens a held result with its namespace's key as PostgreSQL has it now; null once shredded. */
  async openHeld(namespaceId: string, jobId: string, box: Buffer): Promise<Buffer | null> {
    if (box.length < SALT) return null;
    const row = await this.d.store.findNamespaceKey(namespaceId);
    if (!row?.wrapped) return null;
    const nsKey = this.unwrap(namespaceId, row.master_version, row.wrapped);
    return gcmOpen(documentKey(nsKey, box.subarray(0, SALT), jobId), box.subarray(SALT), heldAad(namespaceId, jobId));
  }

  /** Crypto-shreds a namespace (also done by the namespace deletion's trigger, migrations/0026). */
  async shredNamespace(namespaceId: string): Promise<boolean> {
    this.generation++;
    this.cache.set(namespaceId, { key: null, at: Date.now() });
    return this.d.store.shredNamespaceKey(namespaceId);
  }

  /**
   * Re-wraps every namespace key not under the current master version (rotation); the payloads are not
   * touched. `progress` hears each page's count. Returns how many keys were re-wrapped.
   */
  async rewrapAll(progress?: (done: number) => void): Promise<number> {
    let done = 0;
    for (;;) {
      const page = await this.d.store.listKeysToRewrap(this.current, 500);
      if (page.length === 0) return done;
      for (const row of page) {
        const key = this.unwrap(row.namespace_id, row.master_version, row.wrapped!);
        if (await this.d.store.replaceWrappedKey(row, this.current, gcmSeal(this.master(this.current), key, wrapAad(row.namespace_id)))) done++;
      }
      progress?.(done);
    }
  }

  /** Drops the memory of unwrapped keys (tests; a process that must forget at once). */
  forget(): void {
    this.generation++;
    this.cache.clear();
    this.lookups.clear();
  }

  /**
   * Applies an announced catalogue change (wired to postgres/catalog-changes.ts with the catalogue's own
   * listener): a namespace's change (its deletion, which shreds its key, among them) drops its key here; a
   * lost listener drops them all, as changes may have been missed meanwhile.
   */
  readonly onCatalogChange = (change: CatalogChange): void => {
    if (change.table === 'namespaces') {
      this.generation++;
      this.cache.delete(change.key);
      this.lookups.delete(change.key);
    } else if (change.table === 'lost') this.forget();
  };

  /**
   * The namespace's data key to seal with, made on its first seal; refused once shredded. Concurrent seals
   * of a namespace not in memory share one lookup (a burst of results would otherwise send one each).
   */
  private async sealingKey(namespaceId: string): Promise<Buffer> {
    const hit = this.cache.get(namespaceId);
    let key: Buffer | null;
    if (hit && Date.now() - hit.at < KEY_CACHE_MS) key = hit.key;
    else {
      let lookup = this.lookups.get(namespaceId);
      if (!lookup) {
        const started = this.lookUpSealingKey(namespaceId).finally(() => {
          if (this.lookups.get(namespaceId) === started) this.lookups.delete(namespaceId);
        });
        lookup = started;
        this.lookups.set(namespaceId, lookup);
      }
      key = await lookup;
    }
    if (!key) throw new NamespaceShreddedError(namespaceId);
    return key;
  }

  private async lookUpSealingKey(namespaceId: string): Promise<Buffer | null> {
    const generation = this.generation;
    let row = await this.d.store.findNamespaceKey(namespaceId);
    if (!row) {
      const fresh = randomBytes(32);
      row = await this.d.store.insertNamespaceKey(namespaceId, this.current, gcmSeal(this.master(this.current), fresh, wrapAad(namespaceId)));
      if (!row) return null;
    }
    const key = row.wrapped ? this.unwrap(namespaceId, row.master_version, row.wrapped) : null;
    // Kept unless a change was announced while it was looked up (the row read may predate it).
    if (generation === this.generation) {
      if (this.cache.size >= KEY_CACHE_MAX) this.cache.clear();
      this.cache.set(namespaceId, { key, at: Date.now() });
    }
    return key;
  }

  private unwrap(namespaceId: string, version: number, wrapped: Buffer): Buffer {
    const key = gcmOpen(this.master(version), wrapped, wrapAad(namespaceId));
    if (!key) throw new Error(`namespace ${namespaceId}'s key does not open under master key version ${version}`);
    return key;
  }

  private master(version: number): Buffer {
    const key = this.d.masterKeys.get(version);
    if (!key) throw new Error(`master key version ${version} is not in PAYLOAD_MASTER_KEYS: add it back (rotation keeps old versions until rewrap-keys has run)`);
    return key;
  }

  /** Resolves once every salt insert in flight has ended (shutdown). */
  drained(): Promise<void> {
    return this.salts.drained();
  }
}
