// A real HTTP receiver of webhooks for the tests: verifies every delivery's Standard Webhooks signature
// with the `standardwebhooks` library (the one its specification's authors keep), per path with that
// path's endpoint secret, and records what it accepted. Per path it can answer 204 (accept), 503 (fail),
// or hold the request open without answering (hang: a delivery in flight when its sender dies).
import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

export interface ReceivedWebhook {
  path: string;
  /** The `webhook-id` header: the message's id, the same on every attempt of one message. */
  id: string;
  type: string;
  data: Record<string, unknown>;
}

export type ReceiverMode = 'accept' | 'fail' | 'hang';

export class WebhookReceiver {
  readonly received: ReceivedWebhook[] = [];
  /** Requests seen per path, whatever the answer (verified or not). */
  readonly hits = new Map<string, number>();
  /** Deliveries refused because the signature did not verify. */
  rejected = 0;
  private readonly secrets = new Map<string, string>();
  private readonly modes = new Map<string, ReceiverMode>();
  private constructor(private readonly server: http.Server, private readonly base: string) {}

  static async start(): Promise<WebhookReceiver> {
    let self: WebhookReceiver | null = null;
    const server = http.createServer((req, res) => self!.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    self = new WebhookReceiver(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    return self;
  }

  url(path: string): string {
    return `${this.base}${path}`;
  }

  /** The endpoint secret (`whsec_...`) the deliveries to `path` must be signed with. */
  expect(path: string, secret: string): void {
    this.secrets.set(path, secret);
  }

  mode(path: string, mode: ReceiverMode): void {
    this.modes.set(path, mode);
  }

  of(path: string, type?: string): ReceivedWebhook[] {
    return this.received.filter((r) => r.path === path && (type === undefined || r.type === type));
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = req.url ?? '/';
    this.hits.set(path, (this.hits.get(path) ?? 0) + 1);
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const mode = this.modes.get(path) ?? 'accept';
      if (mode === 'hang') return; // never answered: the sender's socket stays open until it dies or times out
      if (mode === 'fail') return void res.writeHead(503).end();
      const secret = this.secrets.get(path);
      try {
        if (!secret) throw new Error('no secret for this path');
        const event = new Webhook(secret).verify(body, req.headers as Record<string, string>) as { type: string; data: Record<string, unknown> };
        if (!specSignatureMatches(secret, req.headers, body)) throw new Error('signature differs from the specification');
        this.received.push({ path, id: String(req.headers['webhook-id']), type: event.type, data: event.data });
        res.writeHead(204).end();
      } catch {
        this.rejected += 1;
        res.writeHead(400).end(); // a bad signature is never accepted
      }
    });
  }
}

/**
 * The specification's rule, computed here independently of the library (so that a fault shared by the
 * signer and the verifier, both `standardwebhooks`, still shows): `v1,` + base64(HMAC-SHA256 over
 * `${webhook-id}.${webhook-timestamp}.${body}`, keyed by the base64 after `whsec_`).
 */
function specSignatureMatches(secret: string, headers: http.IncomingHttpHeaders, body: string): boolean {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const expected = createHmac('sha256', key).update(`${String(headers['webhook-id'])}.${String(headers['webhook-timestamp'])}.${body}`).digest();
  return String(headers['webhook-signature'] ?? '')
    .split(' ')
    .some((sig) => {
      const [version, value] = sig.split(',');
      const given = Buffer.from(value ?? '', 'base64');
      return version === 'v1' && given.length === expected.length && timingSafeEqual(given, expected);
    });
}
