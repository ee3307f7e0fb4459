// The account API's decisions: sign-up and log-in by email and password, Sign-In with Ethereum, sessions,
// and an owner's namespaces and their API keys. Namespace and key operations are the admin services' own
// (gate/accounts-admin.service.ts, gate/api-keys-admin.service.ts: one implementation of each rule),
// reached here only after the caller's ownership is established: a namespace of another account is "not
// found", exactly like one that does not exist.
import { createHash } from 'node:crypto';
import { AppError, errors } from '../errors.js';
import { hashPassword, needsRehash, passwordPolicyProblem, passwordTooLong, verifyPassword } from '../domain/passwords.js';
import { generateSessionToken, hashSessionToken, looksLikeSessionToken } from '../domain/session-tokens.js';
import { parseSiweMessage, SiweFormatError, siweMessageProblem, type SiweMessage } from '../domain/siwe.js';
import { recoverPersonal } from '../domain/signatures.js';
import type { AccountProfile, NamespaceRow } from '../postgres/accounts.repository.js';
import type { ApiKeyRow } from '../postgres/api-keys.repository.js';
import type { SessionRow, SignInMethod } from '../postgres/sessions.repository.js';
import type { RateLimitRepository } from '../redis/rate-limit.repository.js';
import type { SiweNonces } from '../redis/siwe-nonces.repository.js';
import type { AccountsAdminService } from './accounts-admin.service.js';
import type { ApiKeysAdminService, KeyOptions } from './api-keys-admin.service.js';
import type { Network } from '../domain/eligibility.js';

/** Clock difference tolerated between a wallet's machine and this server, for SIWE time bounds. */
const SIWE_MAX_SKEW_MS = 60_000;

/** What the service needs from PostgreSQL: postgres/account.store.ts (in memory: test/fakes/account.store.ts). */
export interface AccountStore {
  /** The account signing in with this (normalised) email, with its password hash; null: none. */
  findAccountByEmail(email: string): Promise<(AccountProfile & { password_hash: string }) | null>;
  findAccountProfile(accountId: string): Promise<AccountProfile | null>;
  /** The live namespace if the account owns it; another account's is indistinguishable from none. */
  findOwnedNamespace(accountId: string, namespaceId: string): Promise<NamespaceRow | null>;
  listNamespaces(accountId: string): Promise<NamespaceRow[]>;
  findApiKey(keyId: string): Promise<ApiKeyRow | null>;
  /** The session with this token hash, unless revoked or expired. */
  findLiveSession(tokenHash: Buffer): Promise<SessionRow | null>;
  revokeSession(sessionId: string): Promise<void>;
  /** All of `fn` or none of it. */
  transaction<T>(fn: (tx: AccountTx) => Promise<T>): Promise<T>;
}

export interface AccountTx {
  /** 'email_taken': an account already signs in with this email. */
  createEmailAccount(account: { name: string; email: string; passwordHash: string }): Promise<AccountProfile | 'email_taken'>;
  updatePasswordHash(accountId: string, passwordHash: string): Promise<void>;
  findOrCreateWalletAccount(walletAddress: string, name: string): Promise<{ account: AccountProfile; created: boolean }>;
  /** Drops the account's expired and revoked sessions. */
  pruneSessions(accountId: string): Promise<void>;
  insertSession(session: { accountId: string; tokenHash: Buffer; method: SignInMethod; ttlHours: number }): Promise<SessionRow>;
}

export interface AccountServiceDeps {
  store: AccountStore;
  /** Namespace operations, shared with the admin API (one implementation of each rule). */
  namespaces: Pick<AccountsAdminService, 'createNamespace' | 'renameNamespace' | 'deleteNamespace'>;
  /** API-key operations, shared with the admin API. */
  apiKeys: Pick<ApiKeysAdminService, 'issueApiKey' | 'listApiKeys' | 'revokeApiKey' | 'rotateApiKey'>;
  /** Redis (redis/rate-limit.repository.ts, redis/siwe-nonces.repository.ts). */
  rateLimits: Pick<RateLimitRepository, 'take'>;
  nonces: Pick<SiweNonces, 'issue' | 'consume'>;
  sessionTtlHours: number;
  /**
   * The platform's per-key rate limit (RATE_LIMIT_RPS, RATE_LIMIT_BURST): an owner may give a key a lower
   * one, never a higher one; raising it is the platform's decision (admin API).
   */
  keyRateLimit: { rps: number; burst: number };
  /** Log-in attempts: per email and per client IP, refilled per minute up to the burst. */
  loginLimits: { perMinute: number; burst: number; ipPerMinute: number; ipBurst: number };
  /** The domain SIWE messages must name; null: Sign-In with Ethereum is disabled. */
  siweDomain: string | null;
  siweNonceTtlSeconds: number;
}

/** What a successful sign-in returns: the session token appears here and nowhere else, ever. */
export interface SignIn {
  token: string;
  expires_at: Date;
  account: AccountProfile;
}

/** The caller of an authenticated account-API request. */
export interface AccountPrincipal {
  accountId: string;
  sessionId: string;
}

/** Trimmed and lower-cased: the form stored and compared, so that Alice@Example.com and alice@example.com are one account. */
export function normaliseEmail(email: string): string {
  return email.trim().toLowerCase();
}

export class AccountService {
  constructor(private readonly d: AccountServiceDeps) {}

  // ---- Email and password ------------------------------------------------------------------------

  /** Creates an account that signs in with this email and password, and signs it in. */
  async signUp(input: { email: string; password: string; name?: string }, clientIp: string): Promise<SignIn> {
    const problem = passwordPolicyProblem(input.password);
    if (problem) throw errors.invalid(problem, 'password');
    // Each sign-up costs a memory-hard hash: the client's IP budget bounds how many it can make us compute.
    await this.take(`signin-ip:${clientIp}`, this.d.loginLimits.ipPerMinute, this.d.loginLimits.ipBurst);
    const email = normaliseEmail(input.email);
    const passwordHash = await hashPassword(input.password);
    return this.d.store.transaction(async (tx) => {
      const account = await tx.createEmailAccount({ name: input.name?.trim() || email, email, passwordHash });
      if (account === 'email_taken') throw new AppError('email_taken', 'An account with this email already exists: log in instead.', { param: 'email' });
      return this.openSession(tx, account, 'password');
    });
  }

  /**
   * Signs in with email and password. Every failure is the same 401, and costs the same hash, whether
   * the email is unknown, belongs to a wallet-only account or the password is wrong. Attempts are
   * limited per email and per client IP, successful ones included, so guessing is slow either way.
   */
  async logIn(input: { email: string; password: string }, clientIp: string): Promise<SignIn> {
    if (passwordTooLong(input.password)) throw errors.invalidCredentials();
    const email = normaliseEmail(input.email);
    await this.take(`signin-ip:${clientIp}`, this.d.loginLimits.ipPerMinute, this.d.loginLimits.ipBurst);
    // The email is hashed into the bucket's name: Redis keys need not carry personal data.
    await this.take(`signin-email:${createHash('sha256').update(email).digest('hex')}`, this.d.loginLimits.perMinute, this.d.loginLimits.burst);
    const account = await this.d.store.findAccountByEmail(email);
    const ok = await verifyPassword(input.password, account?.password_hash ?? null);
    if (!account || !ok) throw errors.invalidCredentials();
    const { password_hash: stored, ...profile } = account;
    return this.d.store.transaction(async (tx) => {
      // Raised cost parameters reach existing passwords here, the only time the plain password is known.
      if (needsRehash(stored)) await tx.updatePasswordHash(account.id, await hashPassword(input.password));
      return this.openSession(tx, profile, 'password');
    });
  }

  // ---- Sign-In with Ethereum ---------------------------------------------------------------------

  /**
   * A single-use nonce for the next SIWE message, and the domain that message must name. Nonces count
   * against the client IP's sign-in budget: each one is a Redis key, and anyone may ask for them.
   */
  async siweNonce(clientIp: string): Promise<{ nonce: string; expires_at: Date; domain: string }> {
    const domain = this.siweDomain();
    await this.take(`signin-ip:${clientIp}`, this.d.loginLimits.ipPerMinute, this.d.loginLimits.ipBurst);
    const { nonce, expiresAt } = await this.d.nonces.issue();
    return { nonce, expires_at: expiresAt, domain };
  }

  /**
   * Signs in with a signed EIP-4361 message; the wallet's first sign-in creates its account. The checks
   * run cheapest first, and the nonce is used up only by a message whose signature holds, so that a
   * forged message cannot burn a user's nonce.
   */
  async siweSignIn(input: { message: string; signature: string }): Promise<SignIn & { created: boolean }> {
    const domain = this.siweDomain();
    let message: SiweMessage;
    try {
      message = parseSiweMessage(input.message);
    } catch (err) {
      if (err instanceof SiweFormatError) throw errors.invalid(`message is not an EIP-4361 message: ${err.message}`, 'message');
      throw err;
    }
    const problem = siweMessageProblem(message, {
      domain,
      now: Date.now(),
      maxSkewMs: SIWE_MAX_SKEW_MS,
      maxAgeMs: this.d.siweNonceTtlSeconds * 1000,
    });
    if (problem) throw errors.siweRejected(problem);
    const wallet = message.address.toLowerCase();
    if (recoverPersonal(input.message, input.signature) !== wallet) throw errors.siweRejected('the signature was not made by the address in the message');
    if (!(await this.d.nonces.consume(message.nonce))) throw errors.siweRejected('the nonce was not issued by this server, has expired or was already used');
    return this.d.store.transaction(async (tx) => {
      const { account, created } = await tx.findOrCreateWalletAccount(wallet, message.address);
      return { ...(await this.openSession(tx, account, 'siwe')), created };
    });
  }

  // ---- Sessions ----------------------------------------------------------------------------------

  /** The caller behind an `Authorization: Bearer <session token>` header; 401 for anything else (API keys included). */
  async authenticate(authorization: string | undefined): Promise<AccountPrincipal> {
    const match = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
    if (!match?.[1]) throw errors.invalidSession('Sign in first, and send the session token as Authorization: Bearer <token>.');
    if (!looksLikeSessionToken(match[1])) throw errors.invalidSession();
    const session = await this.d.store.findLiveSession(hashSessionToken(match[1]));
    if (!session) throw errors.invalidSession();
    return { accountId: session.account_id, sessionId: session.id };
  }

  async logOut(p: AccountPrincipal): Promise<void> {
    await this.d.store.revokeSession(p.sessionId);
  }

  async profile(p: AccountPrincipal): Promise<AccountProfile> {
    const account = await this.d.store.findAccountProfile(p.accountId);
    if (!account) throw errors.invalidSession();
    return account;
  }

  // ---- The owner's namespaces and keys -----------------------------------------------------------

  listNamespaces(p: AccountPrincipal): Promise<NamespaceRow[]> {
    return this.d.store.listNamespaces(p.accountId);
  }

  createNamespace(p: AccountPrincipal, name: string, network?: Network): Promise<NamespaceRow> {
    return this.d.namespaces.createNamespace(p.accountId, name, network);
  }

  async renameNamespace(p: AccountPrincipal, namespaceId: string, name: string): Promise<NamespaceRow> {
    await this.ownedNamespace(p, namespaceId);
    return this.d.namespaces.renameNamespace(namespaceId, name);
  }

  async deleteNamespace(p: AccountPrincipal, namespaceId: string): Promise<void> {
    await this.ownedNamespace(p, namespaceId);
    await this.d.namespaces.deleteNamespace(namespaceId);
  }

  async issueApiKey(p: AccountPrincipal, namespaceId: string, opts: KeyOptions): Promise<{ key: ApiKeyRow; secret: string }> {
    await this.ownedNamespace(p, namespaceId);
    const { rps, burst } = this.d.keyRateLimit;
    // The same effective burst the cloud applies to a key without its own (cloud/auth.service.ts).
    const maxBurst = Math.max(rps, burst);
    if (opts.rateLimitRps !== undefined && opts.rateLimitRps > rps) throw errors.invalid(`rate_limit_rps may be at most ${rps}`, 'rate_limit_rps');
    if (opts.rateLimitBurst !== undefined && opts.rateLimitBurst > maxBurst) throw errors.invalid(`rate_limit_burst may be at most ${maxBurst}`, 'rate_limit_burst');
    return this.d.apiKeys.issueApiKey(namespaceId, opts);
  }

  async listApiKeys(p: AccountPrincipal, namespaceId: string): Promise<ApiKeyRow[]> {
    await this.ownedNamespace(p, namespaceId);
    return this.d.apiKeys.listApiKeys(namespaceId);
  }

  async revokeApiKey(p: AccountPrincipal, namespaceId: string, keyId: string): Promise<void> {
    await this.ownedNamespace(p, namespaceId);
    const key = await this.d.store.findApiKey(keyId);
    if (!key || key.namespace_id !== namespaceId) throw errors.notFound('Active API key');
    await this.d.apiKeys.revokeApiKey(keyId);
  }

  /** Replaces one of the namespace's live keys by a new one with the same settings; the old one stops working at once. */
  async rotateApiKey(p: AccountPrincipal, namespaceId: string, keyId: string): Promise<{ key: ApiKeyRow; secret: string }> {
    await this.ownedNamespace(p, namespaceId);
    const key = await this.d.store.findApiKey(keyId);
    if (!key || key.namespace_id !== namespaceId || key.revoked_at) throw errors.notFound('Active API key');
    return this.d.apiKeys.rotateApiKey(keyId);
  }

  // ---- Helpers -----------------------------------------------------------------------------------

  private async ownedNamespace(p: AccountPrincipal, namespaceId: string): Promise<NamespaceRow> {
    const ns = await this.d.store.findOwnedNamespace(p.accountId, namespaceId);
    if (!ns) throw errors.notFound('Namespace');
    return ns;
  }

  private siweDomain(): string {
    if (this.d.siweDomain === null) throw errors.siweDisabled();
    return this.d.siweDomain;
  }

  private async openSession(tx: AccountTx, account: AccountProfile, method: SignInMethod): Promise<SignIn> {
    await tx.pruneSessions(account.id);
    const { token, hash } = generateSessionToken();
    const session = await tx.insertSession({ accountId: account.id, tokenHash: hash, method, ttlHours: this.d.sessionTtlHours });
    return { token, expires_at: session.expires_at, account };
  }

  private async take(bucket: string, perMinute: number, burst: number): Promise<void> {
    const r = await this.d.rateLimits.take(bucket, perMinute / 60, burst);
    if (!r.allowed) throw errors.tooManySignInAttempts(Math.max(1, Math.ceil(r.retryAfterMs / 1000)));
  }
}
