// A namespace's webhook endpoints as its owner manages them (account API and CLI): make one (its secret
// shown once), list them with their state, delete, enable again after a disable, list an endpoint's
// messages with their attempts, and queue a message again; and the namespace's notices (an endpoint
// disabled after persistent failure). Ownership is checked by the caller (the account route; the CLI is
// the platform operator's).
import { randomBytes } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { errors } from '../errors.js';
import type { WebhookAttemptRow, WebhookEndpointRow, WebhookEvent, WebhookMessageRow } from '../postgres/webhooks.repository.js';
import type { NamespaceNoticeRow } from '../postgres/namespace-notices.repository.js';
import { isInternalAddress, webhookUrlProblem } from '../domain/webhook-targets.js';

/**
 * What the service needs from PostgreSQL (postgres/webhooks.store.ts; in memory: test/fakes/webhooks.store.ts).
 * Every operation names the namespace or an endpoint already found in it: one owner never reaches another's.
 */
export interface WebhooksStore {
  listEndpoints(namespaceId: string): Promise<WebhookEndpointRow[]>;
  findEndpoint(namespaceId: string, id: string): Promise<WebhookEndpointRow | null>;
  /**
   * Keeps `secret` for signing (the delivery worker reads it); the row returned never carries it. Null,
   * with nothing written, when the namespace already has `maxPerNamespace` endpoints: the count and the
   * insert are one step (serialised per namespace), so concurrent creates cannot pass the limit together.
   */
  insertEndpoint(e: NewWebhookEndpoint, maxPerNamespace: number): Promise<WebhookEndpointRow | null>;
  /** False when the namespace has no such endpoint. */
  deleteEndpoint(namespaceId: string, id: string): Promise<boolean>;
  /** Clears the disable; false when the namespace has no such endpoint. */
  enableEndpoint(namespaceId: string, id: string): Promise<boolean>;
  /** The endpoint's messages, newest first, each with its attempts. */
  listMessages(endpointId: string, limit: number): Promise<Array<WebhookMessageRow & { attempt_log: WebhookAttemptRow[] }>>;
  /** Queues the message again from its first attempt, under its own id; false when it is not this endpoint's. */
  requeueMessage(endpointId: string, messageId: string): Promise<boolean>;
  /** Newest first. */
  listNotices(namespaceId: string, limit: number): Promise<NamespaceNoticeRow[]>;
}

export interface NewWebhookEndpoint {
  namespaceId: string;
  url: string;
  secret: string;
  events: readonly WebhookEvent[];
  lowCreditsThresholdMicro: number;
  description: string;
}

/** The addresses a host name resolves to (every one: a single private one refuses the target). */
export type ResolveHost = (hostname: string) => Promise<string[]>;

const resolveByDns: ResolveHost = async (hostname) => (await lookup(hostname, { all: true })).map((a) => a.address);

const MICRO = 1_000_000;
/** At most this many endpoints per namespace: each finished job writes one message per endpoint. */
const MAX_ENDPOINTS = 10;

export class WebhooksService {
  constructor(private readonly d: { store: WebhooksStore; allowPrivateTargets: boolean; resolveHost?: ResolveHost }) {}

  async create(
    namespaceId: string,
    e: { url: string; events: readonly WebhookEvent[]; lowCreditsThreshold?: number; description?: string },
  ): Promise<{ endpoint: ReturnType<typeof endpointView>; secret: string }> {
    const problem = webhookUrlProblem(e.url);
    if (problem) throw errors.invalid(`url ${problem}`, 'url');
    await this.assertPublicTarget(new URL(e.url).hostname);
    // Standard Webhooks: `whsec_` and the base64 of 24 to 64 random bytes.
    const secret = `whsec_${randomBytes(32).toString('base64')}`;
    const row = await this.d.store.insertEndpoint(
      {
        namespaceId,
        url: e.url,
        secret,
        events: [...new Set(e.events)],
        lowCreditsThresholdMicro: Math.round((e.lowCreditsThreshold ?? 1) * MICRO),
        description: e.description ?? '',
      },
      MAX_ENDPOINTS,
    );
    if (!row) throw errors.invalid(`A namespace may have at most ${MAX_ENDPOINTS} webhook endpoints.`, 'url');
    return { endpoint: endpointView(row), secret };
  }

  async list(namespaceId: string) {
    return (await this.d.store.listEndpoints(namespaceId)).map(endpointView);
  }

  async remove(namespaceId: string, id: string): Promise<void> {
    if (!(await this.d.store.deleteEndpoint(namespaceId, id))) throw errors.notFound('Webhook endpoint');
  }

  async enable(namespaceId: string, id: string) {
    if (!(await this.d.store.enableEndpoint(namespaceId, id))) throw errors.notFound('Webhook endpoint');
    return endpointView((await this.d.store.findEndpoint(namespaceId, id))!);
  }

  async messages(namespaceId: string, id: string, limit: number) {
    if (!(await this.d.store.findEndpoint(namespaceId, id))) throw errors.notFound('Webhook endpoint');
    return (await this.d.store.listMessages(id, limit)).map((m) => ({
      id: m.id,
      event_type: m.event_type,
      payload: m.payload,
      status: m.status,
      created_at: m.created_at.toISOString(),
      delivered_at: m.delivered_at?.toISOString() ?? null,
      next_attempt_at: m.status === 'pending' ? m.next_attempt_at.toISOString() : null,
      attempts: m.attempt_log,
    }));
  }

  async redeliver(namespaceId: string, id: string, messageId: string): Promise<void> {
    const endpoint = await this.d.store.findEndpoint(namespaceId, id);
    if (!endpoint) throw errors.notFound('Webhook endpoint');
    if (endpoint.disabled_at) throw errors.invalid('The endpoint is disabled: enable it first (POST .../enable).', 'endpoint');
    if (!(await this.d.store.requeueMessage(id, messageId))) throw errors.notFound('Webhook message');
  }

  /**
   * The namespace's notices, newest first: how its owner is told that an endpoint was disabled after
   * persistent failure (besides the endpoint's own disabled_at and disabled_reason).
   */
  async notices(namespaceId: string, limit: number) {
    return (await this.d.store.listNotices(namespaceId, limit)).map((n) => ({
      id: n.id,
      at: n.at.toISOString(),
      kind: n.kind,
      subject: n.subject,
      message: n.message,
      detail: n.detail,
    }));
  }

  /** Refuses a host that is, or resolves to, an internal address (unless the operator allows them). */
  private async assertPublicTarget(hostname: string): Promise<void> {
    if (this.d.allowPrivateTargets) return;
    const host = hostname.replace(/^\[|\]$/g, '');
    let addresses: string[];
    try {
      addresses = isIP(host) ? [host] : await (this.d.resolveHost ?? resolveByDns)(host);
    } catch {
      addresses = [];
    }
    if (addresses.length === 0) throw errors.invalid(`url: the host ${host} does not resolve.`, 'url');
    if (addresses.some(isInternalAddress)) throw errors.invalid('url resolves to a private or loopback address; webhooks go to public addresses only.', 'url');
  }
}

function endpointView(e: WebhookEndpointRow) {
  return {
    id: e.id,
    namespace_id: e.namespace_id,
    url: e.url,
    events: e.events,
    low_credits_threshold: (Number(e.low_credits_threshold_micro) / MICRO).toFixed(6),
    description: e.description,
    created_at: e.created_at.toISOString(),
    enabled: e.disabled_at === null,
    disabled_at: e.disabled_at?.toISOString() ?? null,
    disabled_reason: e.disabled_reason,
  };
}
