// The models admin service's store (gate/models-admin.service.ts ModelsAdminStore) on PostgreSQL: the
// repository functions bound to the pool, and to one transaction inside `transaction`. It matches the
// port by shape (checked where the service is built, src/admin-services.ts).
import { recordAdminChange, type AdminChange } from './admin-changes.repository.js';
import { isUniqueViolation, withTransaction, type Db, type Tx } from './db.js';
import { findModel, modelAliases, replaceModelAliases, setModelUsageBound, upsertModel } from './models.repository.js';
import { bumpEligibilityRevision } from './subclouds.repository.js';
import { findTokenizer, insertTokenizer, type TokenizerRow } from './tokenizers.repository.js';

export function modelsAdminStore(db: Db) {
  const inTransaction = (tx: Tx) => ({
    findModelForUpdate: (name: string) => findModel(tx, name, true),
    upsertModel: (model: Parameters<typeof upsertModel>[1]) => upsertModel(tx, model),
    setUsageBound: (name: string, bound: Parameters<typeof setModelUsageBound>[2]) => setModelUsageBound(tx, name, bound),
    modelAliases: (name: string) => modelAliases(tx, name),
    // An alias that is a model's name is refused by a trigger (migrations/0022) as a unique violation.
    replaceModelAliases: async (name: string, aliases: readonly string[]) => {
      try {
        await replaceModelAliases(tx, name, aliases);
        return true;
      } catch (err) {
        if (isUniqueViolation(err)) return false;
        throw err;
      }
    },
    bumpEligibilityRevision: () => bumpEligibilityRevision(tx),
    recordAdminChange: (change: AdminChange) => recordAdminChange(tx, change),
  });
  return {
    findTokenizer: (sha256: string) => findTokenizer(db, sha256),
    insertTokenizer: (tokenizer: TokenizerRow) => insertTokenizer(db, tokenizer),
    transaction: <T>(fn: (tx: ReturnType<typeof inTransaction>) => Promise<T>) => withTransaction(db, (tx) => fn(inTransaction(tx))),
  };
}
