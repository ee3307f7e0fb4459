// Accounts and their namespaces, for the platform's admin (admin API, `resultity admin`) and, after the
// caller's ownership is checked, for an account's owner (gate/account.service.ts): one implementation of
// each rule (name rules, the per-account quota, refusing to delete a namespace that holds credits or
// unfinished jobs).
import { AppError, errors, formatCredits } from '../errors.js';
import { NAMESPACE_NAME, NAMESPACE_NAME_RULE } from '../domain/namespaces.js';
import { NETWORKS, type Network } from '../domain/eligibility.js';
import type { AccountRow, NamespaceRow } from '../postgres/accounts.repository.js';
import { forgetRevokedKeys, type RevokedKeysCache } from './api-keys-admin.service.js';

/** What the service needs from PostgreSQL: postgres/accounts-admin.store.ts (in memory: test/fakes/accounts-admin.store.ts). */
export interface AccountsAdminStore {
  createAccount(name: string): Promise<AccountRow>;
  findAccount(accountId: string): Promise<AccountRow | null>;
  /** 'name_taken': the account already has a live namespace of that name. */
  renameNamespace(namespaceId: string, name: string): Promise<NamespaceRow | null | 'name_taken'>;
  /** All of `fn` or none of it. */
  transaction<T>(fn: (tx: AccountsAdminTx) => Promise<T>): Promise<T>;
}

export interface AccountsAdminTx {
  /** Locks the account for a quota check to the end of the transaction; false: no such account. */
  lockAccountForQuota(accountId: string): Promise<boolean>;
  countLiveNamespaces(accountId: string): Promise<number>;
  /** 'name_taken': the account already has a live namespace of that name. */
  createNamespace(accountId: string, name: string, network: Network): Promise<NamespaceRow | 'name_taken'>;
  findNamespace(namespaceId: string): Promise<NamespaceRow | null>;
  /** Locks the namespace's two ledger accounts (available, held), in the ledger's lock order. */
  lockLedger(namespaceId: string): Promise<void>;
  /** Available plus held credits, micro-credits. */
  credits(namespaceId: string): Promise<number>;
  countUnfinishedJobs(namespaceId: string): Promise<number>;
  /** false: no such live namespace. */
  markNamespaceDeleted(namespaceId: string): Promise<boolean>;
  /** Revokes every live key of the namespace; their hashes, for the key caches. */
  revokeNamespaceApiKeys(namespaceId: string): Promise<Buffer[]>;
}

/** How many namespaces one account may hold (ACCOUNT_MAX_NAMESPACES). */
export interface NamespaceQuota {
  namespaces: number;
}

export class AccountsAdminService {
  constructor(private readonly d: { store: AccountsAdminStore; catalog?: RevokedKeysCache; quotas: NamespaceQuota }) {}

  createAccount(name: string): Promise<AccountRow> {
    if (!name.trim()) throw errors.invalid('name must not be empty', 'name');
    return this.d.store.createAccount(name.trim());
  }

  /** Creates a namespace on a network (mainnet by default); its jobs never reach the other network's nodes. */
  async createNamespace(accountId: string, name: string, network: Network = 'mainnet'): Promise<NamespaceRow> {
    if (!NAMESPACE_NAME.test(name)) throw errors.invalid(NAMESPACE_NAME_RULE, 'name');
    if (!(NETWORKS as readonly string[]).includes(network)) throw errors.invalid(`network must be one of ${NETWORKS.join(', ')}`, 'network');
    if (!(await this.d.store.findAccount(accountId))) throw errors.notFound('Account');
    return this.d.store.transaction(async (tx) => {
      if (!(await tx.lockAccountForQuota(accountId))) throw errors.notFound('Account');
      const limit = this.d.quotas.namespaces;
      if ((await tx.countLiveNamespaces(accountId)) >= limit) throw new AppError('namespace_limit_reached', `This account already has ${limit} namespaces, its limit: delete one first.`);
      const created = await tx.createNamespace(accountId, name, network);
      if (created === 'name_taken') throw nameTaken(name);
      return created;
    });
  }

  async renameNamespace(namespaceId: string, name: string): Promise<NamespaceRow> {
    if (!NAMESPACE_NAME.test(name)) throw errors.invalid(NAMESPACE_NAME_RULE, 'name');
    const ns = await this.d.store.renameNamespace(namespaceId, name);
    if (ns === 'name_taken') throw nameTaken(name);
    if (!ns) throw errors.notFound('Namespace');
    return ns;
  }

  /**
   * Deletes a namespace, refusing (409) while it holds credits (available or held) or has jobs not yet
   * finished: deleting then would strand money or results. Its API keys are revoked in the same
   * transaction, and evicted from the key caches after it, as a single revocation is.
   *
   * Soft delete (the row stays, marked): jobs, keys and the append-only ledger refer to the namespace,
   * and its history must stay auditable. The ledger accounts stay too, at zero.
   *
   * Concurrency: the namespace's two ledger accounts are locked first (the lock order every ledger
   * transaction follows), so a top-up or job accept either committed before (and is seen here, refusing
   * the delete) or waits and then finds the namespace deleted (topUp re-checks under the same lock; an
   * accept finds the key revoked or the balance at zero), and a key issued meanwhile is revoked with the
   * others (see below).
   */
  async deleteNamespace(namespaceId: string): Promise<void> {
    const revoked = await this.d.store.transaction(async (tx) => {
      if (!(await tx.findNamespace(namespaceId))) throw errors.notFound('Namespace');
      await tx.lockLedger(namespaceId);
      const credits = await tx.credits(namespaceId);
      if (credits > 0) {
        throw errors.conflict(`The namespace holds ${formatCredits(credits)} credits: spend or transfer them before deleting it.`, 'namespace_not_empty');
      }
      const unfinished = await tx.countUnfinishedJobs(namespaceId);
      if (unfinished > 0) throw errors.conflict(`The namespace has ${unfinished} job(s) not finished yet: delete it when they are done.`, 'namespace_busy');
      // Marked before its keys are revoked: marking waits for any key issuance in progress (issueApiKey
      // locks the row), so the revocation that follows sees every key the namespace will ever have.
      if (!(await tx.markNamespaceDeleted(namespaceId))) throw errors.notFound('Namespace');
      return tx.revokeNamespaceApiKeys(namespaceId);
    });
    forgetRevokedKeys(this.d.catalog, revoked);
  }
}

function nameTaken(name: string): AppError {
  return new AppError('name_taken', `The account already has a namespace named '${name}'.`, { param: 'name' });
}
