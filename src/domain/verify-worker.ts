// A thread of the signature pool (verify-pool.ts): recovers signers of EIP-191 messages in batches, off
// the event loop of the process that holds the sockets. Input: [id, signing payload, signature] tuples;
// output: [id, signer address or null] in the same order.
import { parentPort } from 'node:worker_threads';
import { recoverPersonal, type Address } from './signatures.js';

export type RecoverRequest = [id: number, payload: string, signature: string];
export type RecoverAnswer = [id: number, signer: Address | null];

const port = parentPort;
if (!port) throw new Error('verify-worker.js runs only as a worker thread (verify-pool.ts starts it)');
port.on('message', (batch: unknown) => {
  const answers: RecoverAnswer[] = (batch as RecoverRequest[]).map(([id, payload, signature]) => [id, recoverPersonal(payload, signature)]);
  port.postMessage(answers);
});
