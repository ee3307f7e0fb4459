// What the io gateway sends the agent over its socket (domain/protocol.ts, "gateway -> node"): each frame
// is decoded and checked here, then handed to the agent's handler for its type (agent.ts). The agent gives
// one handler per type in a table rather than a switch, so that a type added to the protocol fails the
// build until the agent says what it does with it, instead of falling through unnoticed.
import type { Logger } from 'pino';
import type { RawData } from 'ws';
import { gatewayMessageSchema, type GatewayMessage } from '../domain/protocol.js';

export type GatewayMessageType = GatewayMessage['type'];
export type GatewayMessageOf<K extends GatewayMessageType> = Extract<GatewayMessage, { type: K }>;

/**
 * One handler per message type. `raw` is the frame exactly as received: schema parsing drops fields it
 * does not know, and a job's network signature covers those too (job-runner.ts).
 */
export type GatewayMessageHandlers = { [K in GatewayMessageType]: (msg: GatewayMessageOf<K>, raw: unknown) => void };

/** Decodes one frame and calls the handler for its type; a frame that is not a gateway message is logged and ignored. */
export function handleGatewayFrame(data: RawData, handlers: GatewayMessageHandlers, logger: Logger): void {
  let raw: unknown;
  try {
    raw = JSON.parse(rawText(data));
  } catch {
    logger.warn('ignoring a gateway message that is not JSON');
    return;
  }
  const parsed = gatewayMessageSchema.safeParse(raw);
  if (!parsed.success) {
    logger.warn({ issues: parsed.error.issues.slice(0, 3) }, 'ignoring an invalid gateway message');
    return;
  }
  const msg = parsed.data;
  // Indexing the table by a union of types gives a union of handlers, which TypeScript cannot call with
  // the (equally union-typed) message; the mapped type above guarantees each key takes its own type.
  (handlers[msg.type] as (m: GatewayMessage, raw: unknown) => void)(msg, raw);
}

function rawText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}
