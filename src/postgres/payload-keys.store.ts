// The payload keys service's store (space/payload-keys.service.ts PayloadKeysStore) on PostgreSQL: the
// repository functions bound to the pool. It matches the port by shape (checked where the service is
// built: src/app.ts, src/cli/space.command.ts).
import type { Db } from './db.js';
import {
  findNamespaceKey,
  findPayloadSalts,
  insertNamespaceKey,
  insertPayloadSalts,
  listKeysToRewrap,
  replaceWrappedKey,
  shredNamespaceKey,
  type NamespaceKeyRow,
} from './payload-keys.repository.js';

export function payloadKeysStore(db: Db) {
  return {
    findNamespaceKey: (namespaceId: string) => findNamespaceKey(db, namespaceId),
    insertNamespaceKey: (namespaceId: string, masterVersion: number, wrapped: Buffer) => insertNamespaceKey(db, namespaceId, masterVersion, wrapped),
    listKeysToRewrap: (current: number, limit: number) => listKeysToRewrap(db, current, limit),
    replaceWrappedKey: (row: NamespaceKeyRow, masterVersion: number, wrapped: Buffer) => replaceWrappedKey(db, row, masterVersion, wrapped),
    shredNamespaceKey: (namespaceId: string) => shredNamespaceKey(db, namespaceId),
    insertPayloadSalts: (rows: ReadonlyArray<{ id: string; jobId: string; namespaceId: string; salt: Buffer }>) => insertPayloadSalts(db, rows),
    findPayloadSalts: (ids: readonly string[]) => findPayloadSalts(db, ids),
  };
}
