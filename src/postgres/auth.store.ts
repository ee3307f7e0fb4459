// The API-key authentication's store (cloud/auth.service.ts AuthStore) on PostgreSQL, bound to the pool
// once. It matches the port by shape (checked where the service is built, src/app.ts).
import { touchApiKey } from './api-keys.repository.js';
import type { Queryable } from './db.js';

export function authStore(db: Queryable) {
  return {
    touchApiKey: (keyId: string) => touchApiKey(db, keyId),
  };
}
