// The webhook services' stores on PostgreSQL: the repository functions bound to the pool. They match the
// ports by shape (webhooks/webhooks.service.ts WebhooksStore, webhooks/webhook-delivery.service.ts
// WebhookDeliveryStore; checked where the services are built), so this engine folder need not import them.
import { withTransaction, type Db } from './db.js';
import { listNamespaceNotices } from './namespace-notices.repository.js';
import {
  claimDueMessages,
  deleteEndpoint,
  enableEndpoint,
  findEndpoint,
  insertEndpointWithin,
  listEndpoints,
  listMessages,
  recordAttempt,
  requeueMessage,
  type DueMessage,
  type WebhookEvent,
} from './webhooks.repository.js';

/** A namespace's endpoints, messages and notices, as their owner manages them. */
export function webhooksStore(db: Db) {
  return {
    listEndpoints: (namespaceId: string) => listEndpoints(db, namespaceId),
    findEndpoint: (namespaceId: string, id: string) => findEndpoint(db, namespaceId, id),
    insertEndpoint: (
      e: { namespaceId: string; url: string; secret: string; events: readonly WebhookEvent[]; lowCreditsThresholdMicro: number; description: string },
      maxPerNamespace: number,
    ) => withTransaction(db, (tx) => insertEndpointWithin(tx, e, maxPerNamespace)),
    deleteEndpoint: (namespaceId: string, id: string) => deleteEndpoint(db, namespaceId, id),
    enableEndpoint: (namespaceId: string, id: string) => enableEndpoint(db, namespaceId, id),
    listMessages: (endpointId: string, limit: number) => listMessages(db, endpointId, limit),
    requeueMessage: (endpointId: string, messageId: string) => requeueMessage(db, endpointId, messageId),
    listNotices: (namespaceId: string, limit: number) => listNamespaceNotices(db, namespaceId, limit),
  };
}

/** The delivery worker's outbox: claim what is due, record each attempt. */
export function webhookDeliveryStore(db: Db) {
  return {
    claimDue: (limit: number, leaseMs: number) => claimDueMessages(db, limit, leaseMs),
    recordAttempt: (m: DueMessage, a: { ok: boolean; responseStatus: number | null; error: string | null; durationMs: number; retryInMs: number | null }) =>
      recordAttempt(db, m, a),
  };
}
