// In-memory CatalogStore (catalog/catalog.service.ts) for the fast tests of the catalogue and of the
// services that read through it (auth, inference). Rows are kept as PostgreSQL returns them; `hold`
// stops the next lookup of an operation until released (a read on its way while a change is announced).
import type { ApiKeyRow } from '../../src/postgres/api-keys.repository.js';
import type { NamespaceRow } from '../../src/postgres/accounts.repository.js';
import type { ModelRow } from '../../src/postgres/models.repository.js';
import type { CatalogStore } from '../../src/catalog/catalog.service.js';
import { FakeDatabase } from './fake-database.js';

export class FakeCatalogStore implements CatalogStore {
  readonly db = new FakeDatabase({
    models: new Map<string, ModelRow>(),
    /** alias -> model name */
    aliases: new Map<string, string>(),
    namespaces: new Map<string, NamespaceRow>(),
    /** SHA-256 (hex) -> key row; revoked or expired rows are not returned, as the query filters them */
    apiKeys: new Map<string, ApiKeyRow>(),
  });
  private readonly held = new Map<string, Promise<void>>();

  /** The next lookup of `operation` reads its row, then waits for the returned function to be called. */
  hold(operation: 'model' | 'namespace' | 'activeApiKey'): () => void {
    let release!: () => void;
    this.held.set(operation, new Promise<void>((resolve) => (release = resolve)));
    return release;
  }

  model(name: string): Promise<ModelRow | null> {
    const { models, aliases } = this.db.state;
    return this.answer('model', models.get(name) ?? models.get(aliases.get(name) ?? '') ?? null);
  }

  namespace(id: string): Promise<NamespaceRow | null> {
    return this.answer('namespace', this.db.state.namespaces.get(id) ?? null);
  }

  activeApiKey(hash: Buffer): Promise<ApiKeyRow | null> {
    const row = this.db.state.apiKeys.get(hash.toString('hex'));
    const active = row && row.revoked_at === null && (row.expires_at === null || row.expires_at.getTime() > Date.now());
    return this.answer('activeApiKey', active ? { ...row } : null);
  }

  /** The row as read now, answered once a hold on the operation (if any) is released. */
  private async answer<T>(operation: string, row: T): Promise<T> {
    this.db.call(operation);
    const held = this.held.get(operation);
    if (held) {
      this.held.delete(operation);
      await held;
    }
    return row;
  }
}

export function modelRow(name: string, over: Partial<ModelRow> = {}): ModelRow {
  return {
    name,
    input_price_micro: 1,
    output_price_micro: 2,
    min_charge_micro: 0,
    context_tokens: 4096,
    version: '1',
    content_hash: null,
    min_gpu_memory_mb: 0,
    priority_surcharge_bps: {},
    tokenizer_sha256: null,
    max_tokens_per_byte: 1,
    created_at: new Date(0),
    ...over,
  };
}

export function namespaceRow(id: string, over: Partial<NamespaceRow> = {}): NamespaceRow {
  return { id, account_id: `account-of-${id}`, name: id, network: 'mainnet', subcloud: null, retention_plan: 'standard', retention_days: null, created_at: new Date(0), ...over };
}

export function apiKeyRow(id: string, namespaceId: string, over: Partial<ApiKeyRow> = {}): ApiKeyRow {
  return {
    id,
    namespace_id: namespaceId,
    key_prefix: 'rk_test',
    name: id,
    rate_limit_rps: null,
    rate_limit_burst: null,
    monthly_cap_micro: null,
    expires_at: null,
    last_used_at: null,
    created_at: new Date(0),
    revoked_at: null,
    ...over,
  };
}
