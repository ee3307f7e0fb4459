// Sign-In with Ethereum (EIP-4361): a strict parser of the message a wallet signs, its formatter (the
// exact inverse, for clients and tests), and the relying party's checks of one message (domain, time
// bounds). Hand-written because the `siwe` package needs ethers; the signature itself is checked with
// domain/signatures.ts, the same @noble/curves code that checks node messages. Pure: no I/O.
//
// The message, field by field, in this order, lines separated by LF (no CR), no trailing LF:
//
//   ${scheme}://${domain} wants you to sign in with your Ethereum account:   (scheme optional)
//   ${address}                                                               (EIP-55 checksummed)
//   (empty line)
//   ${statement}                                                             (optional, one line)
//   (empty line)
//   URI: ${uri}
//   Version: 1
//   Chain ID: ${chain-id}
//   Nonce: ${nonce}
//   Issued At: ${issued-at}
//   Expiration Time: ${expiration-time}                                      (optional)
//   Not Before: ${not-before}                                                (optional)
//   Request ID: ${request-id}                                                (optional)
//   Resources:                                                               (optional, then one
//   - ${resources[i]}                                                         line per resource)
//
// Without a statement the address is followed by two empty lines (the ABNF's `[ statement LF ] LF`).
import { checksumAddress, type Address } from './signatures.js';

export interface SiweMessage {
  scheme: string | null;
  /** RFC 3986 authority (host and optional port) asking for the sign-in. */
  domain: string;
  /** As written in the message: EIP-55 checksummed. */
  address: Address;
  statement: string | null;
  uri: string;
  version: '1';
  chainId: number;
  nonce: string;
  issuedAt: Date;
  expirationTime: Date | null;
  notBefore: Date | null;
  requestId: string | null;
  resources: string[];
}

/** A message that is not a well-formed EIP-4361 message; `message` says which part is wrong. */
export class SiweFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SiweFormatError';
  }
}

const HEADER_SUFFIX = ' wants you to sign in with your Ethereum account:';
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*$/;
// authority = host [":" port]: a registered name, an IPv4 address or a bracketed IP literal. User info is
// refused: "user@host" is the classic way to make a domain read like another one.
const AUTHORITY = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]+)(?::[0-9]{1,5})?$/;
// An absolute RFC 3986 URI: scheme ":" then only characters RFC 3986 allows (no spaces, no non-ASCII).
const URI = /^[A-Za-z][A-Za-z0-9+.-]*:[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]+$/;
// statement = *( reserved / unreserved / " " ), and at least one character when present.
const STATEMENT = /^[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;= ]+$/;
const CHAIN_ID = /^[1-9][0-9]{0,15}$/;
// nonce = at least 8 letters or digits; bounded so that a message cannot carry a huge one.
const NONCE = /^[A-Za-z0-9]{8,128}$/;
const REQUEST_ID = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})*$/;
// RFC 3339 date-time, upper-case T and Z.
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T([01]\d|2[0-3]):([0-5]\d):([0-5]\d)(\.\d{1,9})?(Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)$/;

function parseDateTime(value: string, field: string): Date {
  const m = DATE_TIME.exec(value);
  if (!m) throw new SiweFormatError(`${field} must be an RFC 3339 date-time, such as 2024-05-01T12:00:00Z`);
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  // Date.parse rolls 2021-02-30 over to March 2nd: check the day against the month first.
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth) throw new SiweFormatError(`${field} is not a calendar date`);
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new SiweFormatError(`${field} is not a valid date-time`);
  return new Date(ms);
}

/** Parses an EIP-4361 message; throws SiweFormatError naming the first part that does not conform. */
export function parseSiweMessage(text: string): SiweMessage {
  if (text.includes('\r')) throw new SiweFormatError('lines must be separated by LF only (no CR)');
  const lines = text.split('\n');
  let i = 0;
  const next = (): string | undefined => lines[i++];

  const header = next() ?? '';
  if (!header.endsWith(HEADER_SUFFIX)) throw new SiweFormatError(`the first line must end with '${HEADER_SUFFIX.trim()}'`);
  let origin = header.slice(0, -HEADER_SUFFIX.length);
  let scheme: string | null = null;
  const schemeEnd = origin.indexOf('://');
  if (schemeEnd >= 0) {
    scheme = origin.slice(0, schemeEnd);
    origin = origin.slice(schemeEnd + 3);
    if (!SCHEME.test(scheme)) throw new SiweFormatError('the scheme is not a valid URI scheme');
  }
  if (!AUTHORITY.test(origin)) throw new SiweFormatError('the domain must be a host with an optional port');

  const address = next() ?? '';
  if (!/^0x[0-9a-fA-F]{40}$/.test(address)) throw new SiweFormatError('the second line must be an Ethereum address (0x and 40 hex digits)');
  if (checksumAddress(address) !== address) throw new SiweFormatError('the address must be in its EIP-55 checksummed (mixed-case) form');

  if (next() !== '') throw new SiweFormatError('an empty line must follow the address');
  let statement: string | null = null;
  const afterAddress = next();
  if (afterAddress !== '') {
    if (afterAddress === undefined || !STATEMENT.test(afterAddress)) {
      throw new SiweFormatError('the statement must be one line of printable ASCII (RFC 3986 reserved and unreserved characters and spaces)');
    }
    statement = afterAddress;
    if (next() !== '') throw new SiweFormatError('an empty line must follow the statement');
  }

  /** The value of the next line, which must be `${label}: value`. */
  const field = (label: string): string => {
    const line = next();
    const prefix = `${label}: `;
    if (line === undefined || !line.startsWith(prefix)) throw new SiweFormatError(`expected '${prefix}...' on line ${i}`);
    return line.slice(prefix.length);
  };
  /** The value of an optional field: consumed only when the next line carries that label. */
  const optional = (label: string): string | null => (lines[i]?.startsWith(`${label}: `) ? field(label) : null);

  const uri = field('URI');
  if (!URI.test(uri)) throw new SiweFormatError('URI must be an absolute RFC 3986 URI');
  if (field('Version') !== '1') throw new SiweFormatError("Version must be '1'");
  const chainIdText = field('Chain ID');
  if (!CHAIN_ID.test(chainIdText) || !Number.isSafeInteger(Number(chainIdText))) throw new SiweFormatError('Chain ID must be a positive integer');
  const nonce = field('Nonce');
  if (!NONCE.test(nonce)) throw new SiweFormatError('Nonce must be 8 to 128 letters or digits');
  const issuedAt = parseDateTime(field('Issued At'), 'Issued At');
  const expirationText = optional('Expiration Time');
  const notBeforeText = optional('Not Before');
  const requestId = optional('Request ID');
  if (requestId !== null && !REQUEST_ID.test(requestId)) throw new SiweFormatError('Request ID may hold only RFC 3986 path characters');

  const resources: string[] = [];
  if (lines[i] === 'Resources:') {
    i++;
    while (i < lines.length) {
      const line = lines[i++]!;
      if (!line.startsWith('- ') || !URI.test(line.slice(2))) throw new SiweFormatError(`each resource must be a line '- <absolute URI>' (line ${i})`);
      resources.push(line.slice(2));
    }
  }
  if (i < lines.length) throw new SiweFormatError(`unexpected content on line ${i + 1} (fields out of order, unknown, or a trailing newline)`);

  return {
    scheme,
    domain: origin,
    address,
    statement,
    uri,
    version: '1',
    chainId: Number(chainIdText),
    nonce,
    issuedAt,
    expirationTime: expirationText === null ? null : parseDateTime(expirationText, 'Expiration Time'),
    notBefore: notBeforeText === null ? null : parseDateTime(notBeforeText, 'Not Before'),
    requestId,
    resources,
  };
}

/** The EIP-4361 text of a message: what a client asks the wallet to sign (dates in UTC, milliseconds). */
export function formatSiweMessage(m: Omit<SiweMessage, 'version'> & { version?: '1' }): string {
  const lines = [`${m.scheme ? `${m.scheme}://` : ''}${m.domain}${HEADER_SUFFIX}`, m.address, ''];
  if (m.statement !== null) lines.push(m.statement);
  lines.push('', `URI: ${m.uri}`, 'Version: 1', `Chain ID: ${m.chainId}`, `Nonce: ${m.nonce}`, `Issued At: ${m.issuedAt.toISOString()}`);
  if (m.expirationTime) lines.push(`Expiration Time: ${m.expirationTime.toISOString()}`);
  if (m.notBefore) lines.push(`Not Before: ${m.notBefore.toISOString()}`);
  if (m.requestId !== null) lines.push(`Request ID: ${m.requestId}`);
  if (m.resources.length > 0) lines.push('Resources:', ...m.resources.map((r) => `- ${r}`));
  return lines.join('\n');
}

export interface SiweExpectations {
  /** The domain (host[:port]) this server accepts sign-ins for, compared case-insensitively. */
  domain: string;
  now: number;
  /** Clock difference tolerated between the client that wrote the message and this server. */
  maxSkewMs: number;
  /** How old issued-at may be: a message cannot predate its nonce, which lives this long. */
  maxAgeMs: number;
}

/**
 * Why the relying party must refuse this (well-formed) message, or null when its domain and time bounds
 * are acceptable. The nonce and the signature are checked by the caller.
 */
export function siweMessageProblem(m: SiweMessage, e: SiweExpectations): string | null {
  if (m.domain.toLowerCase() !== e.domain.toLowerCase()) return `the message is for the domain '${m.domain}', not '${e.domain}'`;
  if (m.issuedAt.getTime() > e.now + e.maxSkewMs) return 'the message was issued in the future (Issued At)';
  if (m.issuedAt.getTime() < e.now - e.maxAgeMs - e.maxSkewMs) return 'the message was issued too long ago (Issued At)';
  if (m.expirationTime && m.expirationTime.getTime() <= e.now) return 'the message has expired (Expiration Time)';
  if (m.notBefore && m.notBefore.getTime() > e.now + e.maxSkewMs) return 'the message is not valid yet (Not Before)';
  return null;
}
