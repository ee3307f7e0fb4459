// In-memory PayloadKeysStore (space/payload-keys.service.ts) for the service's fast tests: namespace keys
// as wrapped (null once shredded) and documents' salts; a read finds a salt only with its namespace's key.
import type { NamespaceKeyRow, PayloadSaltRow } from '../../src/postgres/payload-keys.repository.js';
import type { PayloadKeysStore } from '../../src/space/payload-keys.service.js';

export class FakePayloadKeysStore implements PayloadKeysStore {
  /** Namespaces that exist (a key is made for these only, as the engine's INSERT ... SELECT does). */
  readonly namespaces = new Set<string>();
  readonly keys = new Map<string, NamespaceKeyRow>();
  readonly salts = new Map<string, { jobId: string; namespaceId: string; salt: Buffer }>();
  readonly calls: string[] = [];

  findNamespaceKey(namespaceId: string): Promise<NamespaceKeyRow | null> {
    this.calls.push('findNamespaceKey');
    const row = this.keys.get(namespaceId);
    return Promise.resolve(row ? { ...row } : null);
  }

  insertNamespaceKey(namespaceId: string, masterVersion: number, wrapped: Buffer): Promise<NamespaceKeyRow | null> {
    this.calls.push('insertNamespaceKey');
    if (this.namespaces.has(namespaceId) && !this.keys.has(namespaceId)) this.keys.set(namespaceId, { namespace_id: namespaceId, master_version: masterVersion, wrapped });
    return this.findNamespaceKey(namespaceId);
  }

  listKeysToRewrap(current: number, limit: number): Promise<NamespaceKeyRow[]> {
    const rows = [...this.keys.values()].filter((k) => k.master_version !== current && k.wrapped !== null);
    return Promise.resolve(rows.sort((a, b) => a.namespace_id.localeCompare(b.namespace_id)).slice(0, limit).map((k) => ({ ...k })));
  }

  replaceWrappedKey(row: NamespaceKeyRow, masterVersion: number, wrapped: Buffer): Promise<boolean> {
    const now = this.keys.get(row.namespace_id);
    if (!now || now.master_version !== row.master_version || now.wrapped === null) return Promise.resolve(false);
    this.keys.set(row.namespace_id, { namespace_id: row.namespace_id, master_version: masterVersion, wrapped });
    return Promise.resolve(true);
  }

  shredNamespaceKey(namespaceId: string): Promise<boolean> {
    const row = this.keys.get(namespaceId);
    for (const [id, s] of this.salts) if (s.namespaceId === namespaceId) this.salts.delete(id);
    if (!row?.wrapped) return Promise.resolve(false);
    row.wrapped = null;
    return Promise.resolve(true);
  }

  insertPayloadSalts(rows: ReadonlyArray<{ id: string; jobId: string; namespaceId: string; salt: Buffer }>): Promise<void> {
    this.calls.push('insertPayloadSalts');
    for (const r of rows) this.salts.set(r.id, { jobId: r.jobId, namespaceId: r.namespaceId, salt: r.salt });
    return Promise.resolve();
  }

  findPayloadSalts(ids: readonly string[]): Promise<Map<string, PayloadSaltRow>> {
    const out = new Map<string, PayloadSaltRow>();
    for (const id of ids) {
      const s = this.salts.get(id);
      const key = s && this.keys.get(s.namespaceId);
      if (s && key?.wrapped) out.set(id, { ...s, masterVersion: key.master_version, wrapped: key.wrapped });
    }
    return Promise.resolve(out);
  }

  /** A job's deletion (SpaceJobs, postgres/payload-keys.repository.ts deletePayloadSalts): its salts go. */
  shredJob(jobId: string): number {
    let n = 0;
    for (const [id, s] of this.salts) if (s.jobId === jobId && this.salts.delete(id)) n++;
    return n;
  }
}
