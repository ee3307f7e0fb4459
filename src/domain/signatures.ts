// Node and network signatures: secp256k1 keys whose identity is their EVM address, messages signed as
// EIP-191 personal messages over a canonical JSON encoding (RFC 8785), so that any Ethereum wallet or
// library can produce and check them. Pure functions: no I/O.
//
// Two secp256k1 libraries, one behaviour. Signing and public-key recovery, the hot path (every heartbeat,
// result and dispatch), run in libsecp256k1 compiled to WebAssembly (tiny-secp256k1: no native build,
// the same C code Bitcoin Core runs, constant-time signing): about 4.5 times faster than @noble/curves
// here (BENCHMARKS.md, fleet section). @noble/curves stays for key generation and derivation, and as the
// reference the unit tests hold the fast path to (same signatures byte for byte, same verdicts on valid,
// high-S, wrong-recovery-id and malformed input). Keccak stays @noble/hashes: a few microseconds a
// message, not worth a second hashing library.
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import canonicalizeModule from 'canonicalize';
import * as ecc from 'tiny-secp256k1';

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

/** The EIP-191 personal-message hash of `message` (what is signed and recovered). */
export function personalMessageHash(message: string): Uint8Array {
  const body = utf8ToBytes(message);
  const prefix = utf8ToBytes(`\x19Ethereum Signed Message:\n${body.length}`);
  const all = new Uint8Array(prefix.length + body.length);
  all.set(prefix);
  all.set(body, prefix.length);
  return keccak_256(all);
}

/**
 * Signs `message` as an EIP-191 personal message; returns the 65-byte r||s||v signature in hex (v = 27|28).
 * Deterministic (RFC 6979) and low-S, as libsecp256k1 always signs: byte for byte what noble makes.
 */
export function signPersonal(privateKeyHex: string, message: string): string {
  const { signature, recoveryId } = ecc.signRecoverable(personalMessageHash(message), hexToBytes(strip0x(privateKeyHex)));
  const eth = new Uint8Array(65);
  eth.set(signature, 0);
  eth[64] = 27 + recoveryId;
  return `0x${bytesToHex(eth)}`;
}

/** The address that signed `message`, or null when the signature is malformed. */
export function recoverPersonal(message: string, signatureHex: string): Address | null {
  return recoverFromHash(personalMessageHash(message), signatureHex);
}

/**
 * The address whose key made `signatureHex` (r||s||v, v = 0|1|27|28) over the 32-byte `hash`, or null.
 * High-S signatures are accepted, as Ethereum's ecrecover and noble's recoverPublicKey accept them
 * (malleable, but a replayed variant still names the same signer, and replay is refused by nonce or
 * attempt, never by signature bytes). r or s zero or not below the curve order, an r that is no
 * x-coordinate, and recovery ids 2 and 3 (r ≥ n - p: never made by an honest signer) yield null.
 */
function recoverFromHash(hash: Uint8Array, signatureHex: string): Address | null {
  try {
    const eth = hexToBytes(strip0x(signatureHex));
    if (eth.length !== 65) return null;
    const v = eth[64] ?? 0;
    const recovery = v >= 27 ? v - 27 : v;
    if (recovery !== 0 && recovery !== 1) return null;
    // tiny-secp256k1 throws on an invalid r or s (zero, not below n, r no x-coordinate): null, as noble.
    const pub = ecc.recover(hash, eth.subarray(0, 64), recovery, false);
    return pub ? addressFromPublicKey(pub) : null;
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

type SignedMessage = { type: string; signature: string } & Record<string, unknown>;

/**
 * Messages already verified: the object, with the signing payload, signature and signer checked. A second
 * check of the same unchanged object (the gateway's, then the results service's) costs one canonical
 * encoding instead of a recovery; an object changed since (another payload or signature) is verified
 * afresh. Weak: an entry lives as long as its message.
 */
const verified = new WeakMap<object, { payload: string; signature: string; signer: string }>();

function alreadyVerified(message: SignedMessage, payload: string, signer: string): boolean {
  const seen = verified.get(message);
  return seen !== undefined && seen.payload === payload && seen.signature === message.signature && seen.signer === signer;
}

/**
 * What verifying `message` against `expected` needs: its signing payload, the expected signer in lower
 * case, and whether this very object was already verified for that signer (then nothing is left to do).
 */
export function verificationOf(message: SignedMessage, expected: string): { payload: string; signer: string; done: boolean } {
  const payload = signingPayload(message);
  const signer = expected.toLowerCase();
  return { payload, signer, done: alreadyVerified(message, payload, signer) };
}

/** Records that `message`, with this signing payload and signature, was verified as signed by `signer` (lower case). */
export function markVerified(message: SignedMessage, payload: string, signature: string, signer: string): void {
  verified.set(message, { payload, signature, signer });
}

/** True when `message.signature` was made by `expected` over the message's other fields. */
export function verifyMessage(message: SignedMessage, expected: string): boolean {
  const { payload, signer, done } = verificationOf(message, expected);
  if (done) return true;
  if (recoverPersonal(payload, message.signature) !== signer) return false;
  markVerified(message, payload, message.signature, signer);
  return true;
}

export function sha256Hex(text: string): string {
  return bytesToHex(sha256(utf8ToBytes(text)));
}

function strip0x(hex: string): string {
  return hex.startsWith('0x') ? hex.slice(2) : hex;
}
