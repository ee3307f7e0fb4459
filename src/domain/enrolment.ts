// Node enrolment: a node is bound to an operator account only with that operator's consent. The operator
// either enrols the node's address ahead of time (account API, admin CLI), or hands the node an enrolment
// token: a statement signed by the network key that this operator accepts this address, until a time.
// The node presents the token in its (signed) registration; the gateway checks it against the network
// address with no database read, and binds the node.
//
// Token: `ret1.` + base64url of the signed statement's JSON. A token names one address, so a leaked token
// enrols nothing but the node it was made for, and only to its operator.
import { z } from 'zod';
import { signMessage, verifyMessage } from './signatures.js';

const TOKEN_PREFIX = 'ret1.';
/** The longest a token may be valid: it is a bearer credential for one binding, not a standing grant. */
export const ENROLMENT_TOKEN_MAX_TTL_HOURS = 24 * 30;

const statementSchema = z.object({
  type: z.literal('node_enrolment'),
  node: z.string().regex(/^0x[0-9a-f]{40}$/),
  operator: z.string().uuid(),
  /** Epoch milliseconds after which the token is refused. */
  expiresAt: z.number().int().positive(),
  signature: z.string(),
});

/** A token binding `node` (lower-case address) to `operator`, signed by the network key. */
export function issueEnrolmentToken(networkKey: string, node: string, operator: string, expiresAt: number): string {
  const statement = signMessage(networkKey, { type: 'node_enrolment' as const, node: node.toLowerCase(), operator, expiresAt });
  return TOKEN_PREFIX + Buffer.from(JSON.stringify(statement), 'utf8').toString('base64url');
}

/**
 * Why a token does not enrol `node` to `operator` now, or null when it does: it must be well formed,
 * signed by the network key, name this node and this operator, and not be expired.
 */
export function enrolmentTokenProblem(token: string, networkAddress: string, node: string, operator: string, now = Date.now()): string | null {
  if (!token.startsWith(TOKEN_PREFIX)) return 'the enrolment token is malformed';
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(token.slice(TOKEN_PREFIX.length), 'base64url').toString('utf8'));
  } catch {
    return 'the enrolment token is malformed';
  }
  const parsed = statementSchema.safeParse(json);
  if (!parsed.success) return 'the enrolment token is malformed';
  const s = parsed.data;
  if (!verifyMessage(s, networkAddress)) return 'the enrolment token is not signed by this network';
  if (s.node !== node.toLowerCase()) return 'the enrolment token was made for another node address';
  if (s.operator !== operator) return 'the enrolment token was made for another operator';
  if (s.expiresAt <= now) return 'the enrolment token has expired';
  return null;
}
