// The gate's tables in memory, shared by the fakes of the gate's stores (test/fakes/*-admin.store.ts,
// account.store.ts), so that a fast test can run several services on one database, as the engine does:
// a top-up the credits service makes is what the accounts service sees when it deletes the namespace.
// Only what the services can observe is kept; no SQL is re-implemented.
import { randomUUID } from 'node:crypto';
import type { AdminChange } from '../../src/postgres/admin-changes.repository.js';
import type { AccountProfile, NamespaceRow } from '../../src/postgres/accounts.repository.js';
import type { ApiKeyRow } from '../../src/postgres/api-keys.repository.js';
import type { ModelRow } from '../../src/postgres/models.repository.js';
import type { TokenizerRow } from '../../src/postgres/tokenizers.repository.js';
import type { SessionRow } from '../../src/postgres/sessions.repository.js';
import type { Posting } from '../../src/domain/postings.js';
import type { Network } from '../../src/domain/eligibility.js';
import { FakeDatabase } from './fake-database.js';

export interface GateTables {
  accounts: Map<string, AccountProfile & { password_hash: string | null }>;
  /** Soft-deleted namespaces stay, marked. */
  namespaces: Map<string, NamespaceRow & { deleted: boolean }>;
  /** The key's hash in hex (a Buffer would not survive the transaction's snapshot). */
  apiKeys: Map<string, ApiKeyRow & { key_hash: string }>;
  /** Ledger balances by `kind/owner`, micro-credits. */
  balances: Map<string, number>;
  postings: Posting[];
  unfinishedJobs: Map<string, number>;
  /** Monthly spend carried by key id. */
  monthlySpend: Map<string, number>;
  models: Map<string, ModelRow>;
  /** alias -> model */
  aliases: Map<string, string>;
  tokenizers: Map<string, TokenizerRow>;
  sessions: Map<string, SessionRow & { token_hash: string; revoked: boolean }>;
  adminChanges: AdminChange[];
  /** Eligibility revision bumps. */
  revision: number;
}

export class FakeGateDatabase extends FakeDatabase<GateTables> {
  constructor() {
    super({
      accounts: new Map(),
      namespaces: new Map(),
      apiKeys: new Map(),
      balances: new Map(),
      postings: [],
      unfinishedJobs: new Map(),
      monthlySpend: new Map(),
      models: new Map(),
      aliases: new Map(),
      tokenizers: new Map(),
      sessions: new Map(),
      adminChanges: [],
      revision: 0,
    });
  }

  addAccount(name = 'tenant', extra: Partial<AccountProfile & { password_hash: string | null }> = {}): AccountProfile & { password_hash: string | null } {
    const a = { id: randomUUID(), name, email: null, wallet_address: null, password_hash: null, created_at: new Date(), ...extra };
    this.state.accounts.set(a.id, a);
    return a;
  }

  addNamespace(accountId: string, name: string, network: Network = 'mainnet'): NamespaceRow & { deleted: boolean } {
    const ns = { id: randomUUID(), account_id: accountId, name, network, subcloud: null, retention_plan: 'standard' as NamespaceRow['retention_plan'], retention_days: null, created_at: new Date(), deleted: false };
    this.state.namespaces.set(ns.id, ns);
    return ns;
  }

  liveNamespace(id: string): NamespaceRow | null {
    const ns = this.state.namespaces.get(id);
    if (!ns || ns.deleted) return null;
    const { deleted: _deleted, ...row } = ns;
    return row;
  }

  balance(kind: string, owner: string | null): number {
    return this.state.balances.get(`${kind}/${owner ?? ''}`) ?? 0;
  }

  setBalance(kind: string, owner: string | null, micro: number): void {
    this.state.balances.set(`${kind}/${owner ?? ''}`, micro);
  }

  /** Applies a posting's lines; a namespace account below zero is refused, as the engine's CHECK does. */
  post(p: Posting): void {
    for (const line of p.lines) {
      const next = this.balance(line.account.kind, line.account.owner) + line.amount;
      if (next < 0 && line.account.kind !== 'funding') throw new Error(`ledger account ${line.account.kind}/${line.account.owner} cannot go below zero`);
      this.setBalance(line.account.kind, line.account.owner, next);
    }
    this.state.postings.push(p);
  }

  /** The sum over every ledger account: zero while the ledger balances. */
  ledgerSum(): number {
    return [...this.state.balances.values()].reduce((a, b) => a + b, 0);
  }

  apiKeyRow(id: string): ApiKeyRow | null {
    const k = this.state.apiKeys.get(id);
    if (!k) return null;
    const { key_hash: _hash, ...row } = k;
    return row;
  }

  /** Keys that still work: not revoked, not expired, of a live namespace of the account. */
  activeKeys(accountId: string): number {
    return [...this.state.apiKeys.values()].filter((k) => {
      const ns = this.state.namespaces.get(k.namespace_id);
      return ns && !ns.deleted && ns.account_id === accountId && k.revoked_at === null && (k.expires_at === null || k.expires_at.getTime() > Date.now());
    }).length;
  }

  /** Revokes a live key; its hash, or null when there was none. */
  revokeKey(id: string): Buffer | null {
    const k = this.state.apiKeys.get(id);
    if (!k || k.revoked_at) return null;
    k.revoked_at = new Date();
    return Buffer.from(k.key_hash, 'hex');
  }
}
