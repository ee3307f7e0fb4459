// Account passwords: scrypt (memory-hard, in Node's crypto), a random salt per password, and a
// self-describing stored form in the PHC string format,
//   $scrypt$ln=15,r=8,p=1$<salt, base64 without padding>$<hash, base64 without padding>
// so that the cost can be raised later: a stored hash is always checked with its own parameters, and
// `needsRehash` tells the caller to replace it (at the next successful log-in) when they are below the
// current ones. Pure apart from the CPU and memory scrypt takes (it runs on libuv's thread pool).
import { randomBytes, scrypt as scryptCallback, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/** The cost for new hashes: N = 2^15, r = 8, p = 1 takes 32 MiB and tens of milliseconds per hash. */
export const CURRENT_PARAMS: ScryptParams = { ln: 15, r: 8, p: 1 };

const SALT_BYTES = 16;
const KEY_BYTES = 32;

/**
 * Bounds on parameters read back from storage: a corrupted or tampered row must not make one log-in
 * allocate gigabytes or run for minutes. Wide enough for years of raising the cost.
 */
const LIMITS = { ln: [14, 20], r: [8, 32], p: [1, 16] } as const;

/**
 * Password policy. The minimum follows NIST SP 800-63B (no composition rules, length is what counts).
 * The maximum bounds the work an attacker can make one request cost (the password is hashed as scrypt's
 * PBKDF2 key) and the size of a request; it is counted in Unicode code points after normalisation.
 */
export const PASSWORD_MIN_LENGTH = 10;
export const PASSWORD_MAX_LENGTH = 256;

export interface ScryptParams {
  /** log2 of N, the CPU/memory cost. */
  ln: number;
  r: number;
  p: number;
}

/**
 * The password as it is hashed: NFKC-normalised (SP 800-63B), so that the same password typed on two
 * keyboards that compose characters differently is the same password.
 */
function normalise(password: string): string {
  return password.normalize('NFKC');
}

/** Why `password` breaks the policy, or null when it is acceptable for a new account. */
export function passwordPolicyProblem(password: string): string | null {
  const length = [...normalise(password)].length;
  if (length < PASSWORD_MIN_LENGTH) return `password must be at least ${PASSWORD_MIN_LENGTH} characters`;
  if (length > PASSWORD_MAX_LENGTH) return `password must be at most ${PASSWORD_MAX_LENGTH} characters`;
  return null;
}

/** True when a password is too long to be worth hashing (checked before any log-in attempt is hashed). */
export function passwordTooLong(password: string): boolean {
  return [...normalise(password)].length > PASSWORD_MAX_LENGTH;
}

function scrypt(password: string, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  const N = 2 ** params.ln;
  // scrypt needs about 128 * N * r * p bytes; Node refuses to start when that passes maxmem, whose default
  // (32 MiB) is exactly the need of the current parameters, so give it room.
  const options: ScryptOptions = { N, r: params.r, p: params.p, maxmem: 256 * N * params.r * params.p };
  return new Promise((resolve, reject) => {
    scryptCallback(normalise(password), salt, KEY_BYTES, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

function encode(params: ScryptParams, salt: Buffer, key: Buffer): string {
  return `$scrypt$ln=${params.ln},r=${params.r},p=${params.p}$${salt.toString('base64').replace(/=+$/, '')}$${key.toString('base64').replace(/=+$/, '')}`;
}

interface Decoded {
  params: ScryptParams;
  salt: Buffer;
  key: Buffer;
}

/** The parts of a stored hash, or null when it is not one this module wrote (or its parameters are out of bounds). */
function decode(stored: string): Decoded | null {
  const m = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]{16,})\$([A-Za-z0-9+/]{16,})$/.exec(stored);
  if (!m) return null;
  const params = { ln: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
  for (const name of ['ln', 'r', 'p'] as const) {
    const [min, max] = LIMITS[name];
    if (params[name] < min || params[name] > max) return null;
  }
  const salt = Buffer.from(m[4]!, 'base64');
  const key = Buffer.from(m[5]!, 'base64');
  if (salt.length < SALT_BYTES || key.length !== KEY_BYTES) return null;
  return { params, salt, key };
}

/** Hashes a password for storage with the current parameters and a fresh random salt. */
export async function hashPassword(password: string, params: ScryptParams = CURRENT_PARAMS): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  return encode(params, salt, await scrypt(password, salt, params));
}

/**
 * True when `password` matches `stored`. Compares in constant time. `stored` null (no such account, or an
 * account without a password) and a stored value that cannot be decoded never match, and still cost one
 * hash at the current parameters: a log-in for an unknown email takes as long as a wrong password.
 */
export async function verifyPassword(password: string, stored: string | null): Promise<boolean> {
  const decoded = stored === null ? null : decode(stored);
  if (!decoded) {
    await scrypt(password, randomBytes(SALT_BYTES), CURRENT_PARAMS);
    return false;
  }
  const key = await scrypt(password, decoded.salt, decoded.params);
  return timingSafeEqual(key, decoded.key);
}

/** True when `stored` was made with weaker parameters than the current ones: rehash at the next log-in. */
export function needsRehash(stored: string, current: ScryptParams = CURRENT_PARAMS): boolean {
  const decoded = decode(stored);
  if (!decoded) return true;
  const p = decoded.params;
  return p.ln < current.ln || p.r < current.r || p.p < current.p;
}
