// API keys: issue (within the account's quota), list, rotate, revoke. The admin's surfaces call it
// directly; an account's owner reaches it through gate/account.service.ts once ownership is established.
import { AppError, errors, MICRO } from '../errors.js';
import { generateApiKey } from '../domain/api-keys.js';
import type { Catalog } from '../catalog/catalog.service.js';
import type { NamespaceRow } from '../postgres/accounts.repository.js';
import type { ApiKeyRow, NewApiKey } from '../postgres/api-keys.repository.js';
import { MAX_TOPUP_CREDITS } from './credits-admin.service.js';

export interface KeyOptions {
  name?: string;
  rateLimitRps?: number;
  rateLimitBurst?: number;
  /** Credits the key may commit per calendar month (UTC); unset: no cap. */
  monthlyCapCredits?: number;
  expiresAt?: Date;
}


/** What the service needs from PostgreSQL: postgres/api-keys-admin.store.ts (in memory: test/fakes/api-keys-admin.store.ts). */
export interface ApiKeysAdminStore {
  findNamespace(namespaceId: string): Promise<NamespaceRow | null>;
  findApiKey(keyId: string): Promise<ApiKeyRow | null>;
  listApiKeys(namespaceId: string): Promise<ApiKeyRow[]>;
  /** The revoked key's hash; null: no such live key. */
  revokeApiKey(keyId: string): Promise<Buffer | null>;
  /** All of `fn` or none of it. */
  transaction<T>(fn: (tx: ApiKeysAdminTx) => Promise<T>): Promise<T>;
}

export interface ApiKeysAdminTx {
  /** Locks the account for a quota check to the end of the transaction; false: no such account. */
  lockAccountForQuota(accountId: string): Promise<boolean>;
  countActiveApiKeys(accountId: string): Promise<number>;
  /** The live namespace, locked (a deletion waits for the key's issuance); null: none. */
  lockLiveNamespace(namespaceId: string): Promise<NamespaceRow | null>;
  insertApiKey(key: NewApiKey): Promise<ApiKeyRow>;
  /** Locks the namespace's two ledger accounts (available, held), the lock order of every writer of monthly spend. */
  lockLedger(namespaceId: string): Promise<void>;
  revokeApiKey(keyId: string): Promise<Buffer | null>;
  /** The new key takes over the old one's spend of the month. */
  carryMonthlySpend(fromKeyId: string, toKeyId: string): Promise<void>;
}

/** The server's in-process key cache (catalog/catalog.service.ts); none in the CLI. */
export type RevokedKeysCache = Pick<Catalog, 'forgetApiKeys'>;

/**
 * Every instance drops its copy of a revoked key when the revocation's commit is announced
 * (catalog/catalog.service.ts); this instance does at once, before it answers.
 */
export function forgetRevokedKeys(cache: RevokedKeysCache | undefined, hashes: readonly Buffer[]): void {
  cache?.forgetApiKeys(hashes.map((h) => h.toString('hex')));
}

/** How many live API keys one account may hold (ACCOUNT_MAX_API_KEYS). */
export interface ApiKeyQuota {
  apiKeys: number;
}

export class ApiKeysAdminService {
  constructor(private readonly d: { store: ApiKeysAdminStore; catalog?: RevokedKeysCache; quotas: ApiKeyQuota }) {}

  /**
   * Issues a key; the secret is in the result and nowhere else, ever. `replacing`: the key a rotation
   * revokes next, which does not count against the account's quota.
   */
  async issueApiKey(namespaceId: string, opts: KeyOptions = {}, replacing: ApiKeyRow | null = null): Promise<{ key: ApiKeyRow; secret: string }> {
    const ns = await this.d.store.findNamespace(namespaceId);
    if (!ns) throw errors.notFound('Namespace');
    if (opts.expiresAt && opts.expiresAt.getTime() <= Date.now()) throw errors.invalid('expires_at must be in the future', 'expires_at');
    if (opts.monthlyCapCredits !== undefined && (!Number.isFinite(opts.monthlyCapCredits) || opts.monthlyCapCredits < 0 || opts.monthlyCapCredits > MAX_TOPUP_CREDITS)) {
      throw errors.invalid(`monthly_cap must be between 0 and ${MAX_TOPUP_CREDITS} credits`, 'monthly_cap');
    }
    const { secret, hash, displayPrefix } = generateApiKey();
    const key = await this.d.store.transaction(async (tx) => {
      // The account first (the quota's lock), then the namespace, so that a namespace deleted meanwhile
      // cannot get a key its deletion did not revoke.
      await tx.lockAccountForQuota(ns.account_id);
      const limit = this.d.quotas.apiKeys;
      const others = (await tx.countActiveApiKeys(ns.account_id)) - (replacing && isActiveKey(replacing) ? 1 : 0);
      if (others >= limit) throw new AppError('api_key_limit_reached', `This account already has ${limit} API keys, its limit: revoke one first.`);
      if (!(await tx.lockLiveNamespace(namespaceId))) throw errors.notFound('Namespace');
      return tx.insertApiKey({
        namespaceId,
        keyHash: hash,
        keyPrefix: displayPrefix,
        name: opts.name ?? '',
        rateLimitRps: opts.rateLimitRps ?? null,
        rateLimitBurst: opts.rateLimitBurst ?? null,
        monthlyCapMicro: opts.monthlyCapCredits === undefined ? null : Math.round(opts.monthlyCapCredits * MICRO),
        expiresAt: opts.expiresAt ?? null,
      });
    });
    return { key, secret };
  }

  /** A namespace's keys (never their secrets), newest last. */
  async listApiKeys(namespaceId: string): Promise<ApiKeyRow[]> {
    if (!(await this.d.store.findNamespace(namespaceId))) throw errors.notFound('Namespace');
    return this.d.store.listApiKeys(namespaceId);
  }

  /**
   * Replaces a key by a new one with the same settings; the old one stops working at once. The new key
   * takes over the old one's spend of the month, so that rotating does not reset its monthly cap.
   */
  async rotateApiKey(keyId: string): Promise<{ key: ApiKeyRow; secret: string }> {
    const old = await this.d.store.findApiKey(keyId);
    if (!old || old.revoked_at) throw errors.notFound('Active API key');
    const fresh = await this.issueApiKey(
      old.namespace_id,
      {
        name: old.name,
        ...(old.rate_limit_rps !== null ? { rateLimitRps: old.rate_limit_rps } : {}),
        ...(old.rate_limit_burst !== null ? { rateLimitBurst: old.rate_limit_burst } : {}),
        ...(old.monthly_cap_micro !== null ? { monthlyCapCredits: old.monthly_cap_micro / MICRO } : {}),
        ...(old.expires_at && old.expires_at.getTime() > Date.now() ? { expiresAt: old.expires_at } : {}),
      },
      old,
    );
    const hash = await this.d.store.transaction(async (tx) => {
      await tx.lockLedger(old.namespace_id);
      const revoked = await tx.revokeApiKey(keyId);
      if (revoked) await tx.carryMonthlySpend(keyId, fresh.key.id);
      return revoked;
    });
    if (!hash) throw errors.notFound('Active API key');
    forgetRevokedKeys(this.d.catalog, [hash]);
    return fresh;
  }

  async revokeApiKey(keyId: string): Promise<void> {
    const hash = await this.d.store.revokeApiKey(keyId);
    if (!hash) throw errors.notFound('Active API key');
    forgetRevokedKeys(this.d.catalog, [hash]);
  }
}

function isActiveKey(k: ApiKeyRow): boolean {
  return k.revoked_at === null && (k.expires_at === null || k.expires_at.getTime() > Date.now());
}
