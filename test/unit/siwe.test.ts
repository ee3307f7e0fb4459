// EIP-4361 messages: the strict parser against the EIP's own example and hand-made variants, the
// formatter as its inverse, the relying party's domain and time checks, and EIP-55 addresses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatSiweMessage, parseSiweMessage, SiweFormatError, siweMessageProblem, type SiweMessage } from '../../src/domain/siwe.js';
import { addressOf, checksumAddress, generatePrivateKey, recoverPersonal, signPersonal } from '../../src/domain/signatures.js';

// The example of EIP-4361, byte for byte (its address is WETH's, checksummed).
const EIP_EXAMPLE = [
  'example.com wants you to sign in with your Ethereum account:',
  '0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2',
  '',
  'I accept the ExampleOrg Terms of Service: https://example.com/tos',
  '',
  'URI: https://example.com/login',
  'Version: 1',
  'Chain ID: 1',
  'Nonce: 32891756',
  'Issued At: 2021-09-30T16:25:24Z',
  'Resources:',
  '- ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/',
  '- https://example.com/my-web2-claim.json',
].join('\n');

function refused(text: string, why: RegExp): void {
  assert.throws(() => parseSiweMessage(text), (err: unknown) => err instanceof SiweFormatError && why.test(err.message), `expected refusal matching ${why}`);
}

test('EIP-55: checksummed addresses match the EIP vectors', () => {
  for (const a of [
    '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed',
    '0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359',
    '0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB',
    '0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb',
  ]) {
    assert.equal(checksumAddress(a.toLowerCase()), a);
    assert.equal(checksumAddress(a.toUpperCase().replace('0X', '0x')), a);
  }
  assert.throws(() => checksumAddress('0x1234'));
});

test('the EIP-4361 example parses into its fields', () => {
  const m = parseSiweMessage(EIP_EXAMPLE);
  assert.deepEqual(m, {
    scheme: null,
    domain: 'example.com',
    address: '0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2',
    statement: 'I accept the ExampleOrg Terms of Service: https://example.com/tos',
    uri: 'https://example.com/login',
    version: '1',
    chainId: 1,
    nonce: '32891756',
    issuedAt: new Date('2021-09-30T16:25:24Z'),
    expirationTime: null,
    notBefore: null,
    requestId: null,
    resources: ['ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/', 'https://example.com/my-web2-claim.json'],
  } satisfies SiweMessage);
});

test('a message with a scheme, no statement and every optional field parses, and formats back to the same text', () => {
  const text = [
    'https://app.example.com:8443 wants you to sign in with your Ethereum account:',
    '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed',
    '',
    '',
    'URI: https://app.example.com:8443/login',
    'Version: 1',
    'Chain ID: 137',
    'Nonce: abcDEF123456',
    'Issued At: 2024-02-29T10:00:00.000Z',
    'Expiration Time: 2024-02-29T10:05:00.000Z',
    'Not Before: 2024-02-29T09:59:00.000Z',
    'Request ID: req-42@x',
  ].join('\n');
  const m = parseSiweMessage(text);
  assert.equal(m.scheme, 'https');
  assert.equal(m.domain, 'app.example.com:8443');
  assert.equal(m.statement, null);
  assert.equal(m.chainId, 137);
  assert.equal(m.expirationTime?.toISOString(), '2024-02-29T10:05:00.000Z');
  assert.equal(m.notBefore?.toISOString(), '2024-02-29T09:59:00.000Z');
  assert.equal(m.requestId, 'req-42@x');
  assert.deepEqual(m.resources, []);
  assert.equal(formatSiweMessage(m), text);
  // The formatter's output of the EIP example parses back to the same fields.
  assert.deepEqual(parseSiweMessage(formatSiweMessage(parseSiweMessage(EIP_EXAMPLE))), parseSiweMessage(EIP_EXAMPLE));
});

test('the parser refuses what EIP-4361 does not allow', () => {
  const lines = EIP_EXAMPLE.split('\n');
  const variant = (i: number, line: string | null) => {
    const copy = [...lines];
    if (line === null) copy.splice(i, 1);
    else copy[i] = line;
    return copy.join('\n');
  };
  refused(EIP_EXAMPLE.replace(/\n/g, '\r\n'), /LF only/);
  refused(`${EIP_EXAMPLE}\n`, /each resource must be/); // a trailing newline is an empty resource line
  refused(`${lines.slice(0, 10).join('\n')}\n`, /trailing newline/);
  refused(variant(0, 'example.com wants you to sign in with your account:'), /first line/);
  refused(variant(0, 'user@example.com wants you to sign in with your Ethereum account:'), /domain/);
  refused(variant(1, '0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2'), /EIP-55/); // lower case: no checksum
  refused(variant(1, '0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756CC2'), /EIP-55/); // one letter's case changed
  refused(variant(1, '0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc'), /Ethereum address/);
  refused(variant(2, 'x'), /empty line must follow the address/);
  refused(variant(3, 'Sign in with ✓ please'), /statement/);
  refused(variant(4, null), /empty line must follow the statement/);
  refused(variant(5, 'URI: not a uri'), /URI/);
  refused(variant(6, 'Version: 2'), /Version/);
  refused(variant(7, 'Chain ID: 01'), /Chain ID/);
  refused(variant(7, 'Chain ID: 0'), /Chain ID/);
  refused(variant(8, 'Nonce: 1234567'), /Nonce/); // 7 characters
  refused(variant(8, 'Nonce: 1234-5678'), /Nonce/);
  refused(variant(8, null), /Nonce/);
  refused(variant(9, 'Issued At: 2021-02-30T16:25:24Z'), /calendar date/);
  refused(variant(9, 'Issued At: 2021-09-30 16:25:24Z'), /RFC 3339/);
  refused(variant(9, 'Issued At: 2021-09-30T16:25:24'), /RFC 3339/); // no offset
  refused(variant(11, '- not a uri'), /resource/);
  // Fields out of order, or unknown ones, are not skipped over.
  refused(variant(10, 'Not Before: 2021-09-30T16:25:24Z\nExpiration Time: 2021-09-30T17:25:24Z\nResources:'), /unexpected content/);
  refused(variant(10, 'Favourite Colour: blue\nResources:'), /unexpected content/);
  refused(lines.slice(0, 6).join('\n'), /Version/);
});

test('the relying party refuses another domain, and messages outside their time bounds', () => {
  const issuedAt = new Date('2024-05-01T12:00:00Z');
  const base = parseSiweMessage(
    formatSiweMessage({
      scheme: null,
      domain: 'app.example.com',
      address: checksumAddress(addressOf(generatePrivateKey())),
      statement: null,
      uri: 'https://app.example.com/',
      chainId: 1,
      nonce: 'a1b2c3d4e5f6',
      issuedAt,
      expirationTime: new Date(issuedAt.getTime() + 60_000),
      notBefore: null,
      requestId: null,
      resources: [],
    }),
  );
  const at = (now: number, m: SiweMessage = base, domain = 'app.example.com') =>
    siweMessageProblem(m, { domain, now, maxSkewMs: 5_000, maxAgeMs: 300_000 });
  const t0 = issuedAt.getTime();
  assert.equal(at(t0 + 1_000), null);
  assert.equal(at(t0 + 1_000, base, 'APP.example.com'), null); // host names compare case-insensitively
  assert.match(at(t0, base, 'evil.example.com') ?? '', /domain 'app.example.com', not 'evil.example.com'/);
  assert.match(at(t0 + 60_000) ?? '', /expired/); // expiration is exclusive
  assert.match(at(t0 - 10_000) ?? '', /issued in the future/);
  assert.equal(at(t0 - 4_000), null); // within the skew
  assert.match(at(t0 + 400_000, { ...base, expirationTime: null }) ?? '', /too long ago/);
  assert.match(at(t0, { ...base, notBefore: new Date(t0 + 30_000) }) ?? '', /not valid yet/);
});

test('a wallet signature over the message recovers the address written in it', () => {
  const key = generatePrivateKey();
  const text = EIP_EXAMPLE.replace('0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2', checksumAddress(addressOf(key)));
  const m = parseSiweMessage(text);
  const signature = signPersonal(key, text);
  assert.equal(recoverPersonal(text, signature), m.address.toLowerCase());
  assert.notEqual(recoverPersonal(text.replace('Chain ID: 1', 'Chain ID: 5'), signature), m.address.toLowerCase());
});
