// Node and network signatures: secp256k1 keys whose identity is their EVM address, messages signed as
// EIP-191 personal messages over a canonical JSON encoding (RFC 8785), so that any Ethereum wallet or
// library can produce and check them. Pure functions: no I/O.
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import canonicalizeModule from 'canonicalize';

// canonicalize is CommonJS (`module.exports = serialize`) but its typings declare an ES default export,
// which NodeNext resolution types as the module namespace; at run time the import is the function.
const canonicalize = canonicalizeModule as unknown as (value: unknown) => string | undefined;

export type Address = `0x${string}`;

export function canonicalJson(value: unknown): string {
  const s = canonicalize(value);
  if (s === undefined) throw new TypeError('value cannot be encoded canonically');
  return s;
}

export function generatePrivateKey(): string {
  return bytesToHex(secp256k1.utils.randomSecretKey());
}

export function addressOf(privateKeyHex: string): Address {
  const pub = secp256k1.getPublicKey(hexToBytes(strip0x(privateKeyHex)), false);
  return addressFromPublicKey(pub);
}

function addressFromPublicKey(uncompressed: Uint8Array): Address {
  return `0x${bytesToHex(keccak_256(uncompressed.subarray(1)).subarray(-20))}`;
}

export function isAddress(s: string): s is Address {
  return /^0x[0-9a-f]{40}$/.test(s);
}

/**
 * The EIP-55 mixed-case checksum form of an address (any case in, checksummed out): a hex letter is upper
 * case when the matching nibble of keccak256(lower-case hex) is 8 or more.
 */
export function checksumAddress(address: string): Address {
  const hex = strip0x(address).toLowerCase();
  if (!/^[0-9a-f]{40}$/.test(hex)) throw new TypeError('not a 20-byte hex address');
  const digest = bytesToHex(keccak_256(utf8ToBytes(hex)));
  let out = '0x';
  for (let i = 0; i < 40; i++) out += parseInt(digest[i]!, 16) >= 8 ? hex[i]!.toUpperCase() : hex[i]!;
  return out as Address;
}

function personalMessageHash(message: string): Uint8Array {
  const body = utf8ToBytes(message);
  const prefix = utf8ToBytes(`\x19Ethereum Signed Message:\n${body.length}`);
  const all = new Uint8Array(prefix.length + body.length);
  all.set(prefix);
  all.set(body, prefix.length);
  return keccak_256(all);
}

/** Signs `message` as an EIP-191 personal message; returns the 65-byte r||s||v signature in hex (v = 27|28). */
export function signPersonal(privateKeyHex: string, message: string): string {
  const sig = secp256k1.sign(personalMessageHash(message), hexToBytes(strip0x(privateKeyHex)), {
    prehash: false,
    format: 'recovered',
  });
  // noble's recovered format is recovery||r||s; Ethereum's is r||s||v.
  const eth = new Uint8Array(65);
  eth.set(sig.subarray(1), 0);
  eth[64] = 27 + (sig[0] ?? 0);
  return `0x${bytesToHex(eth)}`;
}

/** The address that signed `message`, or null when the signature is malformed. */
export function recoverPersonal(message: string, signatureHex: string): Address | null {
  try {
    const eth = hexToBytes(strip0x(signatureHex));
    if (eth.length !== 65) return null;
    const v = eth[64] ?? 0;
    const recovery = v >= 27 ? v - 27 : v;
    if (recovery !== 0 && recovery !== 1) return null;
    const noble = new Uint8Array(65);
    noble[0] = recovery;
    noble.set(eth.subarray(0, 64), 1);
    const pub = secp256k1.recoverPublicKey(noble, personalMessageHash(message), { prehash: false });
    return addressFromPublicKey(secp256k1.Point.fromBytes(pub).toBytes(false));
  } catch {
    return null;
  }
}

/**
 * The string a structured message is signed as: a domain tag naming the message type (so that a signature
 * for one kind of message can never be replayed as another) and the canonical JSON of every other field.
 */
export function signingPayload(message: { type: string } & Record<string, unknown>): string {
  const { signature: _ignored, ...rest } = message;
  return `resultity/v1/${message.type}\n${canonicalJson(rest)}`;
}

export function signMessage<T extends { type: string } & Record<string, unknown>>(privateKeyHex: string, message: T): T & { signature: string } {
  return { ...message, signature: signPersonal(privateKeyHex, signingPayload(message)) };
}

/** True when `message.signature` was made by `expected` over the message's other fields. */
export function verifyMessage(message: { type: string; signature: string } & Record<string, unknown>, expected: string): boolean {
  const signer = recoverPersonal(signingPayload(message), message.signature);
  return signer !== null && signer === expected.toLowerCase();
}

export function sha256Hex(text: string): string {
  return bytesToHex(sha256(utf8ToBytes(text)));
}

function strip0x(hex: string): string {
  return hex.startsWith('0x') ? hex.slice(2) : hex;
}
