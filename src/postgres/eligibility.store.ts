// The eligibility service's store (network/eligibility.service.ts EligibilityStore) on PostgreSQL: the
// repository functions bound to the pool, and to one transaction inside `transaction`. It matches the port
// by shape (checked where the service is built), so this engine folder need not import the service's.
import { bindNamespace, findNamespace } from './accounts.repository.js';
import { recordAdminChange, type AdminChange } from './admin-changes.repository.js';
import { withTransaction, type Db, type Tx } from './db.js';
import { nodeExists } from './nodes.repository.js';
import {
  addSubcloudMember,
  bumpEligibilityRevision,
  deleteSubcloud,
  eligibilityRevision,
  findSubcloud,
  insertSubcloud,
  listSubclouds,
  readEligibilityRules,
  removeSubcloudMember,
  updateSubcloud,
  type SubcloudSettings,
} from './subclouds.repository.js';

export function eligibilityStore(db: Db) {
  const inTransaction = (tx: Tx) => ({
    findSubcloud: (name: string, forUpdate?: boolean) => findSubcloud(tx, name, forUpdate),
    insertSubcloud: (name: string, settings: SubcloudSettings) => insertSubcloud(tx, name, settings),
    updateSubcloud: (name: string, settings: Omit<SubcloudSettings, 'network'>) => updateSubcloud(tx, name, settings),
    deleteSubcloud: (name: string) => deleteSubcloud(tx, name),
    addMember: (subcloud: string, nodeId: string) => addSubcloudMember(tx, subcloud, nodeId),
    removeMember: (subcloud: string, nodeId: string) => removeSubcloudMember(tx, subcloud, nodeId),
    nodeExists: (nodeId: string) => nodeExists(tx, nodeId),
    findNamespace: (namespaceId: string) => findNamespace(tx, namespaceId),
    bindNamespace: (namespaceId: string, subcloud: string | null) => bindNamespace(tx, namespaceId, subcloud),
    bumpRevision: () => bumpEligibilityRevision(tx),
    recordAdminChange: (change: AdminChange) => recordAdminChange(tx, change),
  });
  return {
    readRules: () => withTransaction(db, (tx) => readEligibilityRules(tx), { isolation: 'snapshot', readOnly: true }),
    revision: () => eligibilityRevision(db),
    listSubclouds: (name?: string) => listSubclouds(db, name),
    transaction: <T>(fn: (tx: ReturnType<typeof inTransaction>) => Promise<T>) => withTransaction(db, (tx) => fn(inTransaction(tx))),
  };
}
