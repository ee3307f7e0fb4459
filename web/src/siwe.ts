// Sign-In with Ethereum from the browser's wallet (EIP-1193 provider, e.g. an extension): the server's
// nonce, an EIP-4361 message formatted by the backbone's own formatter (src/domain/siwe.ts), signed with
// personal_sign, exchanged for a session.
import { formatSiweMessage } from '../../src/domain/siwe.js';
import { checksumAddress } from '../../src/domain/signatures.js';
import { api } from './api.js';
import type { Session } from './api-types.js';

interface Eip1193Provider {
  request(args: { method: string; params?: unknown[] }): Promise<unknown>;
}

export function walletProvider(): Eip1193Provider | null {
  const eth = (window as unknown as { ethereum?: Eip1193Provider }).ethereum;
  return eth && typeof eth.request === 'function' ? eth : null;
}

export async function signInWithEthereum(): Promise<Session & { created: boolean }> {
  const wallet = walletProvider();
  if (!wallet) throw new Error('No Ethereum wallet was found in this browser.');
  const accounts = (await wallet.request({ method: 'eth_requestAccounts' })) as string[];
  const address = accounts[0];
  if (!address) throw new Error('The wallet shared no account.');
  const chainId = Number.parseInt(String(await wallet.request({ method: 'eth_chainId' })), 16) || 1;
  const nonce = await api<{ nonce: string; expires_at: string; domain: string }>('GET', '/account/siwe/nonce', undefined, false);
  const issuedAt = new Date();
  const message = formatSiweMessage({
    scheme: location.protocol.replace(':', ''),
    domain: nonce.domain,
    address: checksumAddress(address.toLowerCase()),
    statement: 'Sign in to Resultity.',
    uri: location.origin,
    chainId,
    nonce: nonce.nonce,
    issuedAt,
    expirationTime: new Date(Math.min(Date.parse(nonce.expires_at), issuedAt.getTime() + 5 * 60_000)),
    notBefore: null,
    requestId: null,
    resources: [],
  });
  const signature = (await wallet.request({ method: 'personal_sign', params: [message, address] })) as string;
  return api<Session & { created: boolean }>('POST', '/account/siwe', { message, signature }, false);
}
