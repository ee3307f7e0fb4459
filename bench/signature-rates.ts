// What signing and verifying one heartbeat costs on this machine, per library, measured on one core in
// the run that reports it (bench/fleet.ts; or alone: `node dist/bench/signature-rates.js`):
//   - noble: @noble/curves in JavaScript, the reference (what the backbone used before);
//   - wasm: the chosen library, libsecp256k1 compiled to WebAssembly (tiny-secp256k1), as
//     src/domain/signatures.ts calls it;
//   - pool: verifyMessageAsync with the verify pool open (src/domain/verify-pool.ts): the event loop's
//     own time per verification (the hop: batching, postMessage, the answer) and the pool's throughput.
// "Bare verify" is a recovery from a prepared signing payload (EIP-191 hash, public-key recovery, keccak
// of the key, address compare): the floor of any signed message the gateway takes. Costs are CPU time
// of the process (user + system) over a time box, so other load on a shared machine slows the clock but
// not the figure much.
import { performance } from 'node:perf_hooks';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { personalMessageHash, recoverPersonal, signingPayload, signPersonal, verifyMessage } from '../src/domain/signatures.js';
import { VerifyPool } from '../src/domain/verify-pool.js';
import { heartbeatFrame, newFleetNode } from './fleet-node.js';

export interface LibraryCost {
  /** CPU ms per EIP-191 signature of a heartbeat's payload. */
  signMs: number;
  /** CPU ms per bare verification (recovery from a prepared payload + address compare). */
  verifyMs: number;
}

export interface SignatureRates {
  noble: LibraryCost;
  wasm: LibraryCost;
  /** verifyMessage of a whole heartbeat (canonical encoding included), the chosen library, CPU ms. */
  wasmMessageVerifyMs: number;
  pool: {
    threads: number;
    /** Event-loop time per verification through the pool (its hop), ms. */
    loopMsPerVerify: number;
    /** Verifications per second through the pool with many in flight (wall clock, this machine's cores). */
    verifiesPerSecond: number;
  };
}

/** Runs `op` over and over for about `ms` of wall clock; CPU ms per call. */
function cpuPerOp(ms: number, op: (i: number) => void): number {
  const c0 = process.cpuUsage();
  const end = performance.now() + ms;
  let n = 0;
  while (performance.now() < end) for (let k = 0; k < 10; k++) op(n++);
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000 / n;
}

const reference = {
  sign(key: string, message: string): Uint8Array {
    return secp256k1.sign(personalMessageHash(message), hexToBytes(key), { prehash: false, format: 'recovered' });
  },
  recover(message: string, recovered: Uint8Array): string {
    const pub = secp256k1.Point.fromBytes(secp256k1.recoverPublicKey(recovered, personalMessageHash(message), { prehash: false })).toBytes(false);
    return `0x${bytesToHex(keccak_256(pub.subarray(1)).subarray(-20))}`;
  },
};

export async function measureSignatureRates(opts: { boxMs?: number; poolThreads?: number } = {}): Promise<SignatureRates> {
  const box = opts.boxMs ?? 1_000;
  const nodes = Array.from({ length: 20 }, (_, i) => newFleetNode(i));
  const frames = Array.from({ length: 400 }, (_, i) => heartbeatFrame(nodes[i % nodes.length]!));
  const payloads = frames.map((f) => signingPayload(f));
  const nobleSigs = payloads.map((p, i) => reference.sign(nodes[i % nodes.length]!.privateKey, p));
  const at = (i: number) => i % frames.length;
  for (let i = 0; i < frames.length; i++) {
    if (!verifyMessage(frames[i]!, frames[i]!.nodeId) || reference.recover(payloads[i]!, nobleSigs[i]!) !== frames[i]!.nodeId) throw new Error('a simulated heartbeat does not verify');
  }

  const noble: LibraryCost = {
    signMs: cpuPerOp(box, (i) => reference.sign(nodes[i % nodes.length]!.privateKey, payloads[at(i)]!)),
    verifyMs: cpuPerOp(box, (i) => {
      if (reference.recover(payloads[at(i)]!, nobleSigs[at(i)]!) !== frames[at(i)]!.nodeId) throw new Error('noble: no match');
    }),
  };
  const wasm: LibraryCost = {
    signMs: cpuPerOp(box, (i) => signPersonal(nodes[i % nodes.length]!.privateKey, payloads[at(i)]!)),
    verifyMs: cpuPerOp(box, (i) => {
      if (recoverPersonal(payloads[at(i)]!, frames[at(i)]!.signature) !== frames[at(i)]!.nodeId) throw new Error('wasm: no match');
    }),
  };
  // Fresh objects each time: a message already verified would not be recovered again (signatures.ts).
  const wasmMessageVerifyMs = cpuPerOp(box, (i) => {
    if (!verifyMessage({ ...frames[at(i)]! }, frames[at(i)]!.nodeId)) throw new Error('wasm: message does not verify');
  });

  const threads = opts.poolThreads ?? 2;
  const pool = new VerifyPool(threads);
  try {
    await Promise.all(payloads.slice(0, 50).map((p, i) => pool.recover(p, frames[i]!.signature))); // threads warm
    // Hop cost: one verification at a time, the event loop's active time per verification.
    let n = 0;
    const elu0 = performance.eventLoopUtilization();
    const endHop = performance.now() + box;
    while (performance.now() < endHop) {
      const i = at(n++);
      if ((await pool.recover(payloads[i]!, frames[i]!.signature)) !== frames[i]!.nodeId) throw new Error('pool: no match');
    }
    const elu = performance.eventLoopUtilization(elu0);
    // Throughput: 64 in flight.
    let done = 0;
    const t0 = performance.now();
    const endRun = t0 + box;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (performance.now() < endRun) {
          const i = at(done++);
          await pool.recover(payloads[i]!, frames[i]!.signature);
        }
      }),
    );
    return {
      noble,
      wasm,
      wasmMessageVerifyMs,
      pool: { threads, loopMsPerVerify: elu.active / n, verifiesPerSecond: (done * 1000) / (performance.now() - t0) },
    };
  } finally {
    await pool.close();
  }
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/^.*\/dist\//, '/dist/'))) {
  const r = await measureSignatureRates();
  const line = (label: string, c: LibraryCost) =>
    `${label}: sign ${(c.signMs * 1000).toFixed(0)} µs (${Math.round(1000 / c.signMs)}/s), bare verify ${(c.verifyMs * 1000).toFixed(0)} µs (${Math.round(1000 / c.verifyMs)}/s)`;
  process.stdout.write(`${line('noble (JS)', r.noble)}\n${line('libsecp256k1 (wasm)', r.wasm)}\n`);
  process.stdout.write(`wasm verifyMessage of a heartbeat: ${(r.wasmMessageVerifyMs * 1000).toFixed(0)} µs\n`);
  process.stdout.write(`pool of ${r.pool.threads}: ${(r.pool.loopMsPerVerify * 1000).toFixed(0)} µs of event loop per verification, ${Math.round(r.pool.verifiesPerSecond)} verifications/s\n`);
}
