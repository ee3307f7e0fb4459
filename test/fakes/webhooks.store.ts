// In-memory webhook tables for the fast tests of the webhook services: the owner's store (WebhooksStore,
// webhooks/webhooks.service.ts) and the delivery worker's (WebhookDeliveryStore, webhook-delivery.service.ts)
// over one FakeDatabase, as both services share the tables on the engine (postgres/webhooks.store.ts).
// Time is the tables' own clock (`now`, moved by `advance`), so a retry schedule runs without waiting.
import { randomUUID } from 'node:crypto';
import type { NamespaceNoticeRow } from '../../src/postgres/namespace-notices.repository.js';
import type { DueMessage, WebhookAttemptRow, WebhookEndpointRow, WebhookMessageRow } from '../../src/postgres/webhooks.repository.js';
import type { NewWebhookEndpoint, WebhooksStore } from '../../src/webhooks/webhooks.service.js';
import type { WebhookDeliveryStore } from '../../src/webhooks/webhook-delivery.service.js';
import { FakeDatabase } from './fake-database.js';

type StoredEndpoint = WebhookEndpointRow & { secret: string };
type StoredMessage = WebhookMessageRow & { attempt_log: WebhookAttemptRow[] };

export class FakeWebhookTables {
  readonly db = new FakeDatabase({
    endpoints: [] as StoredEndpoint[],
    messages: [] as StoredMessage[],
    notices: [] as Array<NamespaceNoticeRow & { namespace_id: string }>,
  });
  now = Date.parse('2026-01-01T00:00:00Z');

  advance(ms: number): void {
    this.now += ms;
  }

  endpoint(id: string): StoredEndpoint {
    const e = this.db.state.endpoints.find((x) => x.id === id);
    if (!e) throw new Error(`no endpoint ${id}`);
    return e;
  }

  message(id: string): StoredMessage {
    const m = this.db.state.messages.find((x) => x.id === id);
    if (!m) throw new Error(`no message ${id}`);
    return m;
  }

  /** What the outbox's writers (the hot path's SQL functions) would add for an event. */
  enqueue(endpointId: string, eventType: string, payload: Record<string, unknown>): string {
    const id = `msg_${randomUUID()}`;
    const at = new Date(this.now);
    this.db.state.messages.push({ id, endpoint_id: endpointId, event_type: eventType, payload, created_at: at, status: 'pending', attempts: 0, next_attempt_at: at, delivered_at: null, attempt_log: [] });
    return id;
  }

  disable(endpointId: string, reason: string): void {
    const e = this.endpoint(endpointId);
    e.disabled_at = new Date(this.now);
    e.disabled_reason = reason;
  }
}

export class FakeWebhooksStore implements WebhooksStore {
  constructor(readonly tables: FakeWebhookTables) {}

  private get state() {
    return this.tables.db.state;
  }

  // Rows are returned with their secret, as a careless SELECT * would: what the owner sees is the
  // service's view, which must leave it out.
  listEndpoints(namespaceId: string): Promise<WebhookEndpointRow[]> {
    this.tables.db.call('listEndpoints');
    return Promise.resolve(this.state.endpoints.filter((e) => e.namespace_id === namespaceId).map((e) => ({ ...e })));
  }

  findEndpoint(namespaceId: string, id: string): Promise<WebhookEndpointRow | null> {
    this.tables.db.call('findEndpoint');
    const e = this.state.endpoints.find((x) => x.namespace_id === namespaceId && x.id === id);
    return Promise.resolve(e ? { ...e } : null);
  }

  // Counted and added in one synchronous step: as atomic as the engine's lock makes it.
  insertEndpoint(e: NewWebhookEndpoint, maxPerNamespace: number): Promise<WebhookEndpointRow | null> {
    this.tables.db.call('insertEndpoint');
    if (this.state.endpoints.filter((x) => x.namespace_id === e.namespaceId).length >= maxPerNamespace) return Promise.resolve(null);
    const row: StoredEndpoint = {
      id: randomUUID(),
      namespace_id: e.namespaceId,
      url: e.url,
      secret: e.secret,
      events: [...e.events],
      low_credits_threshold_micro: e.lowCreditsThresholdMicro,
      description: e.description,
      created_at: new Date(this.tables.now),
      disabled_at: null,
      disabled_reason: null,
    };
    this.state.endpoints.push(row);
    return Promise.resolve({ ...row });
  }

  deleteEndpoint(namespaceId: string, id: string): Promise<boolean> {
    this.tables.db.call('deleteEndpoint');
    const before = this.state.endpoints.length;
    this.state.endpoints = this.state.endpoints.filter((x) => !(x.namespace_id === namespaceId && x.id === id));
    this.state.messages = this.state.messages.filter((m) => this.state.endpoints.some((x) => x.id === m.endpoint_id));
    return Promise.resolve(this.state.endpoints.length < before);
  }

  enableEndpoint(namespaceId: string, id: string): Promise<boolean> {
    this.tables.db.call('enableEndpoint');
    const e = this.state.endpoints.find((x) => x.namespace_id === namespaceId && x.id === id);
    if (e) Object.assign(e, { disabled_at: null, disabled_reason: null });
    return Promise.resolve(!!e);
  }

  listMessages(endpointId: string, limit: number): Promise<StoredMessage[]> {
    this.tables.db.call('listMessages');
    const mine = this.state.messages.filter((m) => m.endpoint_id === endpointId);
    return Promise.resolve(mine.reverse().slice(0, limit).map((m) => structuredClone(m)));
  }

  requeueMessage(endpointId: string, messageId: string): Promise<boolean> {
    this.tables.db.call('requeueMessage');
    const m = this.state.messages.find((x) => x.endpoint_id === endpointId && x.id === messageId);
    if (m) Object.assign(m, { status: 'pending', attempts: 0, next_attempt_at: new Date(this.tables.now), delivered_at: null });
    return Promise.resolve(!!m);
  }

  listNotices(namespaceId: string, limit: number): Promise<NamespaceNoticeRow[]> {
    this.tables.db.call('listNotices');
    const mine = this.state.notices.filter((n) => n.namespace_id === namespaceId);
    return Promise.resolve(mine.reverse().slice(0, limit).map(({ namespace_id: _, ...n }) => structuredClone(n)));
  }
}

export class FakeWebhookDeliveryStore implements WebhookDeliveryStore {
  constructor(readonly tables: FakeWebhookTables) {}

  claimDue(limit: number, leaseMs: number): Promise<DueMessage[]> {
    this.tables.db.call('claimDue');
    const { endpoints, messages } = this.tables.db.state;
    const now = this.tables.now;
    const due = messages
      .filter((m) => m.status === 'pending' && m.next_attempt_at.getTime() <= now && endpoints.some((e) => e.id === m.endpoint_id && !e.disabled_at))
      .sort((a, b) => a.next_attempt_at.getTime() - b.next_attempt_at.getTime())
      .slice(0, limit);
    return Promise.resolve(
      due.map((m) => {
        m.next_attempt_at = new Date(now + leaseMs);
        const e = this.tables.endpoint(m.endpoint_id);
        return { id: m.id, endpoint_id: m.endpoint_id, url: e.url, secret: e.secret, payload: structuredClone(m.payload), attempts: m.attempts, created_at: m.created_at };
      }),
    );
  }

  recordAttempt(
    due: DueMessage,
    a: { ok: boolean; responseStatus: number | null; error: string | null; durationMs: number; retryInMs: number | null },
  ): Promise<boolean> {
    this.tables.db.call('recordAttempt');
    const now = this.tables.now;
    const m = this.tables.message(due.id);
    m.attempt_log.push({ message_id: m.id, at: new Date(now), response_status: a.responseStatus, error: a.error, duration_ms: a.durationMs });
    m.attempts += 1;
    if (a.ok) {
      Object.assign(m, { status: 'delivered', delivered_at: new Date(now) });
      return Promise.resolve(false);
    }
    if (a.retryInMs !== null) {
      m.next_attempt_at = new Date(now + a.retryInMs);
      return Promise.resolve(false);
    }
    m.status = 'failed';
    // Persistent failure: nothing of the endpoint's delivered since this message was made.
    const e = this.tables.endpoint(due.endpoint_id);
    const reached = this.tables.db.state.messages.some((x) => x.endpoint_id === e.id && x.delivered_at && x.delivered_at >= due.created_at);
    if (e.disabled_at || reached) return Promise.resolve(false);
    const reason = `every delivery failed since ${due.created_at.toISOString()}; last: ${a.error ?? `HTTP ${a.responseStatus}`}`;
    this.tables.disable(e.id, reason);
    this.tables.db.state.notices.push({
      namespace_id: e.namespace_id,
      id: String(this.tables.db.state.notices.length + 1),
      at: new Date(now),
      kind: 'webhook_endpoint_disabled',
      subject: e.id,
      message: `Webhook endpoint ${e.url} was disabled after persistent delivery failure: ${reason}.`,
      detail: { webhook_id: e.id, url: e.url, reason, message_id: due.id },
    });
    return Promise.resolve(true);
  }
}
