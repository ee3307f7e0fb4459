// In-memory AccountStore (gate/account.service.ts) on the shared gate tables, and stand-ins for its Redis
// rate limits and SIWE nonces.
import { randomUUID } from 'node:crypto';
import type { AccountStore, AccountTx } from '../../src/gate/account.service.js';
import type { AccountProfile, NamespaceRow } from '../../src/postgres/accounts.repository.js';
import type { ApiKeyRow } from '../../src/postgres/api-keys.repository.js';
import type { SessionRow } from '../../src/postgres/sessions.repository.js';
import type { Taken } from '../../src/redis/rate-limit.repository.js';
import type { FakeGateDatabase } from './gate-tables.js';

const profile = ({ id, name, email, wallet_address, created_at }: AccountProfile): AccountProfile => ({ id, name, email, wallet_address, created_at });

export class FakeAccountStore implements AccountStore {
  constructor(readonly db: FakeGateDatabase) {}

  findAccountByEmail(email: string): Promise<(AccountProfile & { password_hash: string }) | null> {
    this.db.call('findAccountByEmail');
    const a = [...this.db.state.accounts.values()].find((x) => x.email === email && x.password_hash !== null);
    return Promise.resolve(a ? { ...profile(a), password_hash: a.password_hash! } : null);
  }

  findAccountProfile(accountId: string): Promise<AccountProfile | null> {
    this.db.call('findAccountProfile');
    const a = this.db.state.accounts.get(accountId);
    return Promise.resolve(a ? profile(a) : null);
  }

  findOwnedNamespace(accountId: string, namespaceId: string): Promise<NamespaceRow | null> {
    this.db.call('findOwnedNamespace');
    const ns = this.db.liveNamespace(namespaceId);
    return Promise.resolve(ns && ns.account_id === accountId ? ns : null);
  }

  listNamespaces(accountId: string): Promise<NamespaceRow[]> {
    this.db.call('listNamespaces');
    return Promise.resolve([...this.db.state.namespaces.values()].filter((n) => n.account_id === accountId && !n.deleted).map((n) => this.db.liveNamespace(n.id)!));
  }

  findApiKey(keyId: string): Promise<ApiKeyRow | null> {
    this.db.call('findApiKey');
    return Promise.resolve(this.db.apiKeyRow(keyId));
  }

  findLiveSession(tokenHash: Buffer): Promise<SessionRow | null> {
    this.db.call('findLiveSession');
    const s = [...this.db.state.sessions.values()].find((x) => x.token_hash === tokenHash.toString('hex') && !x.revoked && x.expires_at.getTime() > Date.now());
    return Promise.resolve(s ? { id: s.id, account_id: s.account_id, method: s.method, created_at: s.created_at, expires_at: s.expires_at } : null);
  }

  revokeSession(sessionId: string): Promise<void> {
    this.db.call('revokeSession');
    const s = this.db.state.sessions.get(sessionId);
    if (s) s.revoked = true;
    return Promise.resolve();
  }

  transaction<T>(fn: (tx: AccountTx) => Promise<T>): Promise<T> {
    const db = this.db;
    return db.transaction(() =>
      fn({
        createEmailAccount: (a) => {
          db.call('createEmailAccount');
          if ([...db.state.accounts.values()].some((x) => x.email === a.email)) return Promise.resolve('email_taken' as const);
          return Promise.resolve(profile(db.addAccount(a.name, { email: a.email, password_hash: a.passwordHash })));
        },
        updatePasswordHash: (accountId, passwordHash) => {
          db.call('updatePasswordHash');
          const a = db.state.accounts.get(accountId);
          if (a) a.password_hash = passwordHash;
          return Promise.resolve();
        },
        findOrCreateWalletAccount: (wallet, name) => {
          db.call('findOrCreateWalletAccount');
          const found = [...db.state.accounts.values()].find((x) => x.wallet_address === wallet);
          if (found) return Promise.resolve({ account: profile(found), created: false });
          return Promise.resolve({ account: profile(db.addAccount(name, { wallet_address: wallet })), created: true });
        },
        pruneSessions: (accountId) => {
          db.call('pruneSessions');
          for (const [id, s] of db.state.sessions) if (s.account_id === accountId && (s.revoked || s.expires_at.getTime() <= Date.now())) db.state.sessions.delete(id);
          return Promise.resolve();
        },
        insertSession: (s) => {
          db.call('insertSession');
          const row = { id: randomUUID(), account_id: s.accountId, method: s.method, created_at: new Date(), expires_at: new Date(Date.now() + s.ttlHours * 3_600_000) };
          db.state.sessions.set(row.id, { ...row, token_hash: s.tokenHash.toString('hex'), revoked: false });
          return Promise.resolve(row);
        },
      }),
    );
  }
}

/** Token buckets as the Redis rate limiter keeps them, without the refill (tests take within a burst). */
export class FakeRateLimits {
  readonly taken = new Map<string, number>();
  take(bucket: string, _perSecond: number, burst: number): Promise<Taken> {
    const n = (this.taken.get(bucket) ?? 0) + 1;
    this.taken.set(bucket, n);
    return Promise.resolve(n <= burst ? { allowed: true, retryAfterMs: 0, touch: false } : { allowed: false, retryAfterMs: 30_000, touch: false });
  }
}
