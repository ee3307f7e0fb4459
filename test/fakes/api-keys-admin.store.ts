// In-memory ApiKeysAdminStore (gate/api-keys-admin.service.ts) on the shared gate tables.
import { randomUUID } from 'node:crypto';
import type { NewApiKey } from '../../src/postgres/api-keys.repository.js';
import type { ApiKeysAdminStore, ApiKeysAdminTx } from '../../src/gate/api-keys-admin.service.js';
import type { NamespaceRow } from '../../src/postgres/accounts.repository.js';
import type { ApiKeyRow } from '../../src/postgres/api-keys.repository.js';
import type { FakeGateDatabase } from './gate-tables.js';

export class FakeApiKeysAdminStore implements ApiKeysAdminStore {
  constructor(readonly db: FakeGateDatabase) {}

  findNamespace(namespaceId: string): Promise<NamespaceRow | null> {
    this.db.call('findNamespace');
    return Promise.resolve(this.db.liveNamespace(namespaceId));
  }

  findApiKey(keyId: string): Promise<ApiKeyRow | null> {
    this.db.call('findApiKey');
    return Promise.resolve(this.db.apiKeyRow(keyId));
  }

  listApiKeys(namespaceId: string): Promise<ApiKeyRow[]> {
    this.db.call('listApiKeys');
    return Promise.resolve([...this.db.state.apiKeys.values()].filter((k) => k.namespace_id === namespaceId).map((k) => this.db.apiKeyRow(k.id)!));
  }

  revokeApiKey(keyId: string): Promise<Buffer | null> {
    this.db.call('revokeApiKey');
    return Promise.resolve(this.db.revokeKey(keyId));
  }

  transaction<T>(fn: (tx: ApiKeysAdminTx) => Promise<T>): Promise<T> {
    const db = this.db;
    return db.transaction(() =>
      fn({
        lockAccountForQuota: (accountId) => {
          db.call('lockAccountForQuota');
          return Promise.resolve(db.state.accounts.has(accountId));
        },
        countActiveApiKeys: (accountId) => {
          db.call('countActiveApiKeys');
          return Promise.resolve(db.activeKeys(accountId));
        },
        lockLiveNamespace: (namespaceId) => {
          db.call('lockLiveNamespace');
          return Promise.resolve(db.liveNamespace(namespaceId));
        },
        insertApiKey: (k: NewApiKey) => {
          db.call('insertApiKey');
          const row: ApiKeyRow = {
            id: randomUUID(),
            namespace_id: k.namespaceId,
            key_prefix: k.keyPrefix,
            name: k.name,
            rate_limit_rps: k.rateLimitRps,
            rate_limit_burst: k.rateLimitBurst,
            monthly_cap_micro: k.monthlyCapMicro,
            expires_at: k.expiresAt,
            last_used_at: null,
            created_at: new Date(),
            revoked_at: null,
          };
          db.state.apiKeys.set(row.id, { ...row, key_hash: k.keyHash.toString('hex') });
          return Promise.resolve(row);
        },
        lockLedger: () => {
          db.call('lockLedger');
          return Promise.resolve();
        },
        revokeApiKey: (keyId) => {
          db.call('revokeApiKey');
          return Promise.resolve(db.revokeKey(keyId));
        },
        carryMonthlySpend: (fromKeyId, toKeyId) => {
          db.call('carryMonthlySpend');
          const spent = db.state.monthlySpend.get(fromKeyId);
          if (spent !== undefined) db.state.monthlySpend.set(toKeyId, spent);
          return Promise.resolve();
        },
      }),
    );
  }
}

/** The key cache the server keeps (catalog): what was forgotten, in hex. */
export class FakeKeyCache {
  readonly forgotten: string[] = [];
  forgetApiKeys(hashesHex: readonly string[]): void {
    this.forgotten.push(...hashesHex);
  }
}
