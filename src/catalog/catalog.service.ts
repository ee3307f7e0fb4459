// In-process copies of the catalogue rows every request reads: a model (prices, context, surcharges), a
// namespace (its network and subcloud: where its jobs may run) and an API key (its namespace and limits).
// Without them each request would pay three PostgreSQL round trips for rows that change a few times a day.
//
// Every change to those rows, by any process, reaches every instance at its commit (PostgreSQL NOTIFY from
// triggers; postgres/catalog-changes.ts), which drops the copy: a repriced model, a namespace bound to a
// subcloud or a revoked key apply to the next request on every instance. A lookup that was already on its
// way to PostgreSQL when a change was announced is not kept (its row may predate the change): the
// `generation` counter tells. Copies also expire after `ttlMs`, and everything is dropped when the
// listening connection was lost (changes may have been missed meanwhile). Only rows that exist are kept:
// a flood of unknown keys or model names costs PostgreSQL lookups, not memory.
import type { ModelRow } from '../postgres/models.repository.js';
import type { NamespaceRow } from '../postgres/accounts.repository.js';
import type { ApiKeyRow } from '../postgres/api-keys.repository.js';
import type { CatalogChange } from '../postgres/catalog-changes.js';
import type { ApiKeyPrincipal } from '../domain/api-keys.js';
import { retentionHoursOf } from '../domain/retention.js';

/** Entries per table past which a table's copies are dropped wholesale (a bound, not an eviction policy). */
const MAX_ENTRIES = 100_000;

interface Entry<T> {
  value: T;
  until: number;
}

class Copies<T> {
  private readonly entries = new Map<string, Entry<T>>();
  get(key: string, now: number): T | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.until <= now) {
      this.entries.delete(key);
      return undefined;
    }
    return e.value;
  }
  set(key: string, value: T, until: number): void {
    if (this.entries.size >= MAX_ENTRIES) this.entries.clear();
    this.entries.set(key, { value, until });
  }
  delete(key: string): void {
    this.entries.delete(key);
  }
  clear(): void {
    this.entries.clear();
  }
}

/**
 * What the catalogue reads from PostgreSQL on a miss: the port its fast tests fake
 * (test/fakes/catalog.store.ts); on the engine it is postgres/catalog.store.ts. One statement each.
 */
export interface CatalogStore {
  /** A model by its own name or an alias; null: none. */
  model(name: string): Promise<ModelRow | null>;
  namespace(id: string): Promise<NamespaceRow | null>;
  /** The active (not revoked, not expired) key with this SHA-256; null: none. */
  activeApiKey(hash: Buffer): Promise<ApiKeyRow | null>;
}

export class Catalog {
  private readonly models = new Copies<ModelRow>();
  private readonly namespaces = new Copies<NamespaceRow>();
  private readonly keys = new Copies<ApiKeyPrincipal>();
  /** Bumped by every announced change: a lookup started before a change is not kept. */
  private generation = 0;

  constructor(
    private readonly store: CatalogStore,
    private readonly ttlMs = 60_000,
  ) {}

  /** Applies an announced change (wired to CatalogChanges). */
  readonly onChange = (change: CatalogChange): void => {
    this.generation++;
    switch (change.table) {
      case 'models':
        // Copies are kept by the name a request used, the model's own or an alias (migration 0022): a
        // changed model may be kept under several, so all go (models change a few times a day).
        return this.models.clear();
      case 'namespaces':
        return this.namespaces.delete(change.key);
      case 'api_keys':
        return this.keys.delete(change.key);
      case 'lost':
        this.models.clear();
        this.namespaces.clear();
        this.keys.clear();
    }
  };

  /**
   * Drops this instance's copies of keys it has just revoked itself, before the revocation's announcement
   * comes back: the instance that revoked a key refuses it from its very next request.
   */
  forgetApiKeys(hashesHex: readonly string[]): void {
    for (const h of hashesHex) this.onChange({ table: 'api_keys', key: h });
  }

  /** A model by its name or an alias. */
  model(name: string): Promise<ModelRow | null> {
    return this.through(this.models, name, this.loadModel);
  }

  namespace(id: string): Promise<NamespaceRow | null> {
    return this.through(this.namespaces, id, this.loadNamespace);
  }

  /** The active key with this SHA-256 (hex), as requests see it; null when there is none. */
  apiKey(hashHex: string): Promise<ApiKeyPrincipal | null> {
    return this.through(this.keys, hashHex, this.loadApiKey);
  }

  // The loaders, made once (not a closure per lookup on the hot path).
  private readonly loadModel = (name: string) => this.store.model(name);
  private readonly loadNamespace = (id: string) => this.store.namespace(id);
  /** The key's row as requests see it. */
  private readonly loadApiKey = async (hashHex: string): Promise<ApiKeyPrincipal | null> => {
    const row = await this.store.activeApiKey(Buffer.from(hashHex, 'hex'));
    return row
      ? {
          keyId: row.id,
          namespaceId: row.namespace_id,
          rateLimitRps: row.rate_limit_rps,
          rateLimitBurst: row.rate_limit_burst,
          monthlyCapMicro: row.monthly_cap_micro,
          expiresAt: row.expires_at?.getTime() ?? null,
        }
      : null;
  };

  private async through<T>(copies: Copies<T>, key: string, load: (key: string) => Promise<T | null>): Promise<T | null> {
    const now = Date.now();
    const cached = copies.get(key, now);
    if (cached !== undefined) return cached;
    const generation = this.generation;
    const value = await load(key);
    if (value !== null && generation === this.generation) copies.set(key, value, now + this.ttlMs);
    return value;
  }
}

/**
 * The retention class of a namespace's new payloads, from the catalogue's copy of its row (no statement
 * per job; a plan change reaches every instance by NOTIFY); null for the zero plan. A namespace gone
 * from the catalogue gets the standard class: its payloads are then shredded with it anyway.
 */
export function retentionHoursFor(catalog: Pick<Catalog, 'namespace'>, standardHours: number): (namespaceId: string) => Promise<number | null> {
  return async (namespaceId) => {
    const ns = await catalog.namespace(namespaceId);
    return ns ? retentionHoursOf(ns, standardHours) : standardHours;
  };
}
