// The fast signature path (libsecp256k1 in WebAssembly, src/domain/signatures.ts) held to the reference,
// @noble/curves: same signatures byte for byte, same verdicts on valid, tampered, high-S, wrong recovery
// id and malformed input; and the verify pool (src/domain/verify-pool.ts): same verdicts, clean close.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { bytesToHex, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { addressOf, generatePrivateKey, recoverPersonal, signingPayload, signMessage, signPersonal, verifyMessage, type Address } from '../../src/domain/signatures.js';
import { openVerifyPool, verifyMessageAsync, VerifyPool } from '../../src/domain/verify-pool.js';

const N = secp256k1.Point.CURVE().n;

/** The reference: the EIP-191 hash, signing and recovery exactly as they were written on noble. */
const reference = {
  hash(message: string): Uint8Array {
    const body = utf8ToBytes(message);
    return keccak_256(new Uint8Array([...utf8ToBytes(`\x19Ethereum Signed Message:\n${body.length}`), ...body]));
  },
  sign(key: string, message: string): string {
    const sig = secp256k1.sign(reference.hash(message), hexToBytes(key), { prehash: false, format: 'recovered' });
    return `0x${bytesToHex(sig.subarray(1))}${(27 + (sig[0] ?? 0)).toString(16)}`;
  },
  recover(message: string, signatureHex: string): Address | null {
    try {
      const eth = hexToBytes(signatureHex.startsWith('0x') ? signatureHex.slice(2) : signatureHex);
      if (eth.length !== 65) return null;
      const v = eth[64] ?? 0;
      const recovery = v >= 27 ? v - 27 : v;
      if (recovery !== 0 && recovery !== 1) return null;
      const noble = new Uint8Array([recovery, ...eth.subarray(0, 64)]);
      const pub = secp256k1.Point.fromBytes(secp256k1.recoverPublicKey(noble, reference.hash(message), { prehash: false })).toBytes(false);
      return `0x${bytesToHex(keccak_256(pub.subarray(1)).subarray(-20))}`;
    } catch {
      return null;
    }
  },
};

const hex32 = (n: bigint) => n.toString(16).padStart(64, '0');

/** r, s and v of a 0x-prefixed 65-byte signature, and the way back. */
function parts(sig: string): { r: bigint; s: bigint; v: number } {
  return { r: BigInt(`0x${sig.slice(2, 66)}`), s: BigInt(`0x${sig.slice(66, 130)}`), v: parseInt(sig.slice(130, 132), 16) };
}
function join(r: bigint, s: bigint, v: number): string {
  return `0x${hex32(r)}${hex32(s)}${v.toString(16).padStart(2, '0')}`;
}

test('signatures are byte for byte those of the reference (RFC 6979, low-S) and recover to the signer in both', () => {
  for (let i = 0; i < 40; i++) {
    const key = generatePrivateKey();
    const message = `resultity/v1/heartbeat\n{"i":${i},"pad":"${'x'.repeat(i * 7)}"}`;
    const sig = signPersonal(key, message);
    assert.equal(sig, reference.sign(key, message));
    assert.ok(parts(sig).s <= N / 2n, 'low-S');
    assert.equal(recoverPersonal(message, sig), addressOf(key));
    assert.equal(reference.recover(message, sig), addressOf(key));
  }
});

test('tampered messages, wrong signers and forgeries: both libraries give the same verdict', () => {
  const key = generatePrivateKey();
  const message = 'resultity/v1/result\n{"attempt":1}';
  const sig = signPersonal(key, message);
  const { r, s, v } = parts(sig);
  const cases: Array<[string, string, string]> = [
    ['tampered message', 'resultity/v1/result\n{"attempt":2}', sig],
    ['signature of another key', message, signPersonal(generatePrivateKey(), message)],
    ['high-S twin (s -> n - s, v flipped)', message, join(r, N - s, v === 27 ? 28 : 27)],
    ['high-S, v unchanged', message, join(r, N - s, v)],
    ['wrong recovery id', message, join(r, s, v === 27 ? 28 : 27)],
    ['recovery id 2', message, join(r, s, 29)],
    ['v = 0 (raw recovery id)', message, join(r, s, v - 27)],
    ['r = 0', message, join(0n, s, v)],
    ['s = 0', message, join(r, 0n, v)],
    ['r = n', message, join(N, s, v)],
    ['s = n', message, join(r, N, v)],
    ['r + 1', message, join(r + 1n, s, v)],
    ['r = 5 (no point with that x)', message, join(5n, s, v)],
    ['all ones', message, `0x${'ff'.repeat(65)}`],
    ['64 bytes', message, sig.slice(0, 130)],
    ['66 bytes', message, `${sig}00`],
    ['not hex', message, `0x${'zz'.repeat(65)}`],
    ['odd length', message, sig.slice(0, 131)],
    ['empty', message, '0x'],
    ['no 0x', message, sig.slice(2)],
  ];
  for (const [what, m, sg] of cases) {
    const fast = recoverPersonal(m, sg);
    assert.equal(fast, reference.recover(m, sg), what);
    if (what !== 'v = 0 (raw recovery id)' && what !== 'no 0x' && what !== 'high-S twin (s -> n - s, v flipped)') assert.notEqual(fast, addressOf(key), what);
  }
  // High-S is accepted (as ecrecover and noble accept it) and names the same signer: the malleated twin
  // cannot pass as anyone else's message.
  assert.equal(recoverPersonal(message, join(r, N - s, v === 27 ? 28 : 27)), addressOf(key));
});

test('structured messages: the fast path rejects what the reference rejects, any field changed', () => {
  const key = generatePrivateKey();
  const who = addressOf(key);
  const msg = signMessage(key, { type: 'heartbeat', nodeId: who, ts: 1, nonce: 'n', models: [{ name: 'm', version: '1' }] });
  assert.equal(msg.signature, reference.sign(key, signingPayload(msg)));
  assert.ok(verifyMessage(msg, who));
  assert.ok(verifyMessage(msg, who.toUpperCase().replace('0X', '0x')), 'the expected address in any case');
  assert.ok(!verifyMessage(msg, addressOf(generatePrivateKey())), 'wrong address');
  for (const changed of [{ ...msg, ts: 2 }, { ...msg, nonce: 'm' }, { ...msg, type: 'register' }, { ...msg, models: [] }, { ...msg, extra: true }]) {
    assert.ok(!verifyMessage(changed, who));
    assert.equal(reference.recover(signingPayload(changed), changed.signature) === who, false);
  }
});

test('a verified message is not trusted again once changed', async () => {
  const key = generatePrivateKey();
  const who = addressOf(key);
  const msg: { type: string; signature: string } & Record<string, unknown> = signMessage(key, { type: 'job_error', jobId: 'j', attempt: 1 });
  assert.ok(await verifyMessageAsync(msg, who));
  assert.ok(verifyMessage(msg, who), 'unchanged: still valid');
  assert.ok(!verifyMessage(msg, addressOf(generatePrivateKey())), 'verified for one signer only');
  msg.attempt = 2;
  assert.ok(!verifyMessage(msg, who), 'a field changed after verification');
  assert.ok(!(await verifyMessageAsync(msg, who)));
  msg.attempt = 1;
  msg.signature = signPersonal(generatePrivateKey(), signingPayload(msg));
  assert.ok(!verifyMessage(msg, who), 'the signature replaced after verification');
});

test('verifyMessageAsync with a pool gives the verdicts of verifyMessage, and the pool closes cleanly', async () => {
  const keys = Array.from({ length: 8 }, () => generatePrivateKey());
  const handle = openVerifyPool(2);
  const second = openVerifyPool(4); // joins the pool already open
  assert.equal(handle.threads, 2);
  assert.equal(second.threads, 2);
  try {
    const msgs = Array.from({ length: 200 }, (_, i) => signMessage(keys[i % keys.length]!, { type: 'heartbeat', i }));
    const checks = msgs.map((m, i) => {
      const expected = i % 5 === 0 ? addressOf(keys[(i + 1) % keys.length]!) : addressOf(keys[i % keys.length]!);
      const tampered = i % 7 === 0 ? { ...m, i: -1 } : m;
      return { tampered, expected, want: i % 5 !== 0 && i % 7 !== 0 };
    });
    const got = await Promise.all(checks.map((c) => verifyMessageAsync(c.tampered, c.expected)));
    assert.deepEqual(got, checks.map((c) => c.want));
    assert.equal(await verifyMessageAsync({ type: 'x', signature: '0x00' }, addressOf(keys[0]!)), false);
  } finally {
    await handle.close();
    await handle.close(); // idempotent
  }
  // Still open through the second handle; closing it stops the threads.
  assert.ok(await verifyMessageAsync(signMessage(keys[0]!, { type: 'heartbeat' }), addressOf(keys[0]!)));
  await second.close();
  // No pool: inline, same verdicts.
  assert.ok(await verifyMessageAsync(signMessage(keys[1]!, { type: 'heartbeat' }), addressOf(keys[1]!)));
  assert.equal(openVerifyPool(0).threads, 0);
});

test('a pool closed with requests pending answers them, and after close verifies inline', async () => {
  const pool = new VerifyPool(1);
  const key = generatePrivateKey();
  const payload = 'resultity/v1/heartbeat\n{}';
  const sig = signPersonal(key, payload);
  const pending = Array.from({ length: 50 }, () => pool.recover(payload, sig));
  await pool.close();
  assert.deepEqual(await Promise.all(pending), pending.map(() => addressOf(key)));
  assert.equal(await pool.recover(payload, sig), addressOf(key));
  assert.equal(pool.size, 0);
});

test('an open pool keeps the process alive only while requests are pending; closed, it holds nothing', async () => {
  const ports = () => process.getActiveResourcesInfo().filter((r) => r === 'MessagePort').length;
  const before = ports();
  const pool = new VerifyPool(2);
  try {
    // Both threads come online (how soon depends on the machine's load), and once online, idle, they are
    // unref-ed: wait for that, bounded, rather than for a fixed time.
    for (let waited = 0; ports() !== before && waited < 10_000; waited += 50) await new Promise((r) => setTimeout(r, 50));
    assert.equal(ports(), before, 'idle threads are unref-ed');
    const busy = pool.recover('m', signPersonal(generatePrivateKey(), 'm'));
    await new Promise((r) => setImmediate(r));
    await busy;
    assert.equal(ports(), before, 'unref-ed again once answered');
  } finally {
    await pool.close();
  }
  assert.equal(ports(), before, 'no port left after close');
});

test('a lone check in a turn is answered on the event loop; a turn\'s batch goes to the thread', async () => {
  const pool = new VerifyPool(1);
  try {
    const key = generatePrivateKey();
    const sig = signPersonal(key, 'm');
    assert.equal(await pool.recover('m', sig), addressOf(key));
    assert.deepEqual(pool.stats(), { inline: 1, offloaded: 0 });
    const many = await Promise.all(Array.from({ length: 10 }, () => pool.recover('m', sig)));
    assert.ok(many.every((a) => a === addressOf(key)));
    assert.deepEqual(pool.stats(), { inline: 1, offloaded: 10 });
  } finally {
    await pool.close();
  }
});
