// The catalogue's store (catalog/catalog.service.ts CatalogStore) on PostgreSQL: the three lookups a miss
// makes, bound to the pool once. It matches the port by shape (checked where the catalogue is built,
// src/app.ts), so this engine folder need not import the service's.
import type { Queryable } from './db.js';
import { findNamespace } from './accounts.repository.js';
import { findActiveApiKeyByHash } from './api-keys.repository.js';
import { findModelByNameOrAlias } from './models.repository.js';

export function catalogStore(db: Queryable) {
  return {
    model: (name: string) => findModelByNameOrAlias(db, name),
    namespace: (id: string) => findNamespace(db, id),
    activeApiKey: (hash: Buffer) => findActiveApiKeyByHash(db, hash),
  };
}
