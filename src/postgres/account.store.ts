// The account service's store (gate/account.service.ts AccountStore) on PostgreSQL: the repository
// functions bound to the pool, and to one transaction inside `transaction`. It matches the port by shape
// (checked where the service is built, src/app.ts).
import {
  createEmailAccount,
  EMAIL_UNIQUE,
  findAccountByEmail,
  findAccountProfile,
  findOrCreateWalletAccount,
  findOwnedNamespace,
  listNamespaces,
  updatePasswordHash,
} from './accounts.repository.js';
import { findApiKey } from './api-keys.repository.js';
import { isUniqueViolation, withTransaction, type Db, type Tx } from './db.js';
import { findLiveSession, insertSession, pruneSessions, revokeSession } from './sessions.repository.js';

export function accountStore(db: Db) {
  const inTransaction = (tx: Tx) => ({
    createEmailAccount: async (a: Parameters<typeof createEmailAccount>[1]) => {
      try {
        return await createEmailAccount(tx, a);
      } catch (err) {
        if (isUniqueViolation(err, EMAIL_UNIQUE)) return 'email_taken' as const;
        throw err;
      }
    },
    updatePasswordHash: (accountId: string, passwordHash: string) => updatePasswordHash(tx, accountId, passwordHash),
    findOrCreateWalletAccount: (walletAddress: string, name: string) => findOrCreateWalletAccount(tx, walletAddress, name),
    pruneSessions: (accountId: string) => pruneSessions(tx, accountId),
    insertSession: (session: Parameters<typeof insertSession>[1]) => insertSession(tx, session),
  });
  return {
    findAccountByEmail: (email: string) => findAccountByEmail(db, email),
    findAccountProfile: (accountId: string) => findAccountProfile(db, accountId),
    findOwnedNamespace: (accountId: string, namespaceId: string) => findOwnedNamespace(db, accountId, namespaceId),
    listNamespaces: (accountId: string) => listNamespaces(db, accountId),
    findApiKey: (keyId: string) => findApiKey(db, keyId),
    findLiveSession: (tokenHash: Buffer) => findLiveSession(db, tokenHash),
    revokeSession: (sessionId: string) => revokeSession(db, sessionId),
    transaction: <T>(fn: (tx: ReturnType<typeof inTransaction>) => Promise<T>) => withTransaction(db, (tx) => fn(inTransaction(tx))),
  };
}
