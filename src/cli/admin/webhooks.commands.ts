// `resultity admin webhook-...`: a namespace's webhook endpoints from the command line, as its owner has
// them on the account API (gate/webhook.routes.ts), for the platform operator: make one (its `whsec_`
// secret printed once), list, delete, enable again after a disable, list an endpoint's messages with their
// attempts, queue one again; and the namespace's notices (an endpoint disabled after persistent failure).
// Talks to PostgreSQL only; the running backbone's maintenance role delivers what these queue.
import type { Command } from 'commander';
import { errors } from '../../errors.js';
import { parse, uuid } from '../../http/parse.http.js';
import { findNamespace } from '../../postgres/accounts.repository.js';
import { WEBHOOK_EVENTS, type WebhookEvent } from '../../postgres/webhooks.repository.js';
import { webhooksStore } from '../../postgres/webhooks.store.js';
import { WebhooksService } from '../../webhooks/webhooks.service.js';
import { out, withDatabase, type Json } from './cli-support.js';

/** Runs `fn` with the webhooks service on a live namespace (checked first: a mistyped id is "not found"). */
async function withNamespace<T>(namespaceId: string, fn: (webhooks: WebhooksService, ns: string) => Promise<T>): Promise<T> {
  return withDatabase(async (db, config) => {
    const ns = parse(uuid, namespaceId);
    if (!(await findNamespace(db, ns))) throw errors.notFound('Namespace');
    return fn(new WebhooksService({ store: webhooksStore(db), allowPrivateTargets: config.WEBHOOK_ALLOW_PRIVATE_TARGETS }), ns);
  });
}

function eventList(v: string): WebhookEvent[] {
  const events = v.split(',').map((e) => e.trim()).filter(Boolean);
  const unknown = events.filter((e) => !(WEBHOOK_EVENTS as readonly string[]).includes(e));
  if (events.length === 0 || unknown.length > 0) throw new Error(`events: expected a comma-separated list of ${WEBHOOK_EVENTS.join(', ')}`);
  return events as WebhookEvent[];
}

function credits(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || n > 1e9) throw new Error(`not an amount of credits: ${v}`);
  return n;
}

function limit(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1 || n > 500) throw new Error(`--limit: a whole number from 1 to 500, got ${v}`);
  return n;
}

interface EndpointView {
  id: string;
  url: string;
  events: string[];
  low_credits_threshold: string;
  enabled: boolean;
  disabled_at: string | null;
  disabled_reason: string | null;
}

function describeEndpoint(e: EndpointView): string {
  const state = e.enabled ? 'enabled' : `DISABLED at ${e.disabled_at} (${e.disabled_reason})`;
  return `webhook ${e.id} ${e.url} [${e.events.join(', ')}] low-credits threshold ${e.low_credits_threshold}: ${state}`;
}

export function registerWebhookCommands(admin: Command): void {
  admin
    .command('webhook-create <namespaceId> <url>')
    .option('--events <list>', `comma-separated: ${WEBHOOK_EVENTS.join(',')}`, eventList, [...WEBHOOK_EVENTS])
    .option('--low-credits-threshold <credits>', 'credits.low fires when available credits fall below this', credits, 1)
    .option('--description <text>', 'a note kept with the endpoint')
    .option('--json', 'JSON output')
    .description("add a webhook endpoint to a namespace; prints its signing secret (whsec_...) once (targets on private addresses need WEBHOOK_ALLOW_PRIVATE_TARGETS=true)")
    .action(async (namespaceId: string, url: string, opts: Json & { events: WebhookEvent[]; lowCreditsThreshold: number; description?: string }) => {
      const made = await withNamespace(namespaceId, (w, ns) =>
        w.create(ns, { url, events: opts.events, lowCreditsThreshold: opts.lowCreditsThreshold, ...(opts.description === undefined ? {} : { description: opts.description }) }),
      );
      out(opts, { ...made.endpoint, secret: made.secret }, `${describeEndpoint(made.endpoint)}\nsigning secret (shown once): ${made.secret}`);
    });

  admin
    .command('webhook-list <namespaceId>')
    .option('--json', 'JSON output')
    .description("a namespace's webhook endpoints and their state (disabled ones with when and why)")
    .action(async (namespaceId: string, opts: Json) => {
      const all = await withNamespace(namespaceId, (w, ns) => w.list(ns));
      out(opts, all, all.map(describeEndpoint).join('\n') || '(no webhook endpoints)');
    });

  admin
    .command('webhook-delete <namespaceId> <webhookId>')
    .option('--json', 'JSON output')
    .description('delete a webhook endpoint and its messages')
    .action(async (namespaceId: string, webhookId: string, opts: Json) => {
      await withNamespace(namespaceId, (w, ns) => w.remove(ns, parse(uuid, webhookId)));
      out(opts, { deleted: webhookId }, `webhook ${webhookId} deleted`);
    });

  admin
    .command('webhook-enable <namespaceId> <webhookId>')
    .option('--json', 'JSON output')
    .description('enable a webhook endpoint disabled after persistent failure')
    .action(async (namespaceId: string, webhookId: string, opts: Json) => {
      const e = await withNamespace(namespaceId, (w, ns) => w.enable(ns, parse(uuid, webhookId)));
      out(opts, e, describeEndpoint(e));
    });

  admin
    .command('webhook-messages <namespaceId> <webhookId>')
    .option('--limit <n>', 'how many, newest first (1 to 500)', limit, 50)
    .option('--json', 'JSON output')
    .description("a webhook endpoint's messages, newest first, with each delivery attempt")
    .action(async (namespaceId: string, webhookId: string, opts: Json & { limit: number }) => {
      const all = await withNamespace(namespaceId, (w, ns) => w.messages(ns, parse(uuid, webhookId), opts.limit));
      const text = all.map((m) => {
        const tries = m.attempts.map((a) => `    ${String(a.at)}  ${a.response_status ?? '-'}  ${a.error ?? 'ok'}  ${a.duration_ms} ms`);
        return [`${m.id} ${m.event_type} ${m.status} (made ${m.created_at}${m.delivered_at ? `, delivered ${m.delivered_at}` : ''}${m.next_attempt_at ? `, next try ${m.next_attempt_at}` : ''})`, ...tries].join('\n');
      });
      out(opts, all, text.join('\n') || '(no messages)');
    });

  admin
    .command('webhook-redeliver <namespaceId> <webhookId> <messageId>')
    .option('--json', 'JSON output')
    .description('queue a message for delivery again (same webhook-id; the endpoint must be enabled)')
    .action(async (namespaceId: string, webhookId: string, messageId: string, opts: Json) => {
      await withNamespace(namespaceId, (w, ns) => w.redeliver(ns, parse(uuid, webhookId), messageId));
      out(opts, { queued: messageId }, `message ${messageId} queued`);
    });

  admin
    .command('namespace-notices <namespaceId>')
    .option('--limit <n>', 'how many, newest first (1 to 500)', limit, 50)
    .option('--json', 'JSON output')
    .description("a namespace's notices for its owner, newest first (e.g. a webhook endpoint disabled after persistent failure)")
    .action(async (namespaceId: string, opts: Json & { limit: number }) => {
      const all = await withNamespace(namespaceId, (w, ns) => w.notices(ns, opts.limit));
      out(opts, all, all.map((n) => `${n.at} ${n.kind} ${n.subject}: ${n.message}`).join('\n') || '(no notices)');
    });
}
