// The node's key pair. The private key lives only in this closure: it is never logged, never put on an
// object that a logger could serialize, and never sent anywhere; only signatures and the address leave.
import { addressOf, signMessage, type Address } from '../domain/signatures.js';

export interface NodeIdentity {
  /** The node id: the lower-case EVM address of its key. */
  readonly nodeId: Address;
  sign<T extends { type: string } & Record<string, unknown>>(message: T): T & { signature: string };
}

export function nodeIdentity(privateKeyHex: string): NodeIdentity {
  // The message deliberately does not echo the input: it is a secret even when malformed.
  if (!/^(0x)?[0-9a-fA-F]{64}$/.test(privateKeyHex)) throw new Error('the node private key must be 32 bytes of hex (64 hex digits, optional 0x)');
  const key = (privateKeyHex.startsWith('0x') ? privateKeyHex.slice(2) : privateKeyHex).toLowerCase();
  const nodeId = addressOf(key);
  return {
    nodeId,
    sign: (message) => signMessage(key, message),
  };
}
