// Snapshots on IPFS through a Kubo node's RPC API: `dag/import` takes the CAR as is and pins its root;
// `dag/export` gives back a CAR of the DAG under a CID (Kubo orders the blocks its own way: verification
// never depends on block order or file bytes, only on the blocks and their CIDs).
import { openAsBlob } from 'node:fs';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { SnapshotNotFoundError, StoreUnavailableError, type SnapshotStore } from '../snapshot-store.js';

/** A request that gets no answer in this long finds the node unreachable (imports of large CARs get longer). */
const CONNECT_TIMEOUT_MS = 10_000;
const IMPORT_TIMEOUT_MS = 10 * 60_000;

export class KuboStore implements SnapshotStore {
  readonly name: string;

  constructor(private readonly apiUrl: string) {
    this.name = `kubo:${apiUrl}`;
  }

  private async call(pathAndQuery: string, init: RequestInit, timeoutMs: number): Promise<Response> {
    try {
      return await fetch(new URL(`/api/v0/${pathAndQuery}`, this.apiUrl), { method: 'POST', ...init, signal: AbortSignal.timeout(timeoutMs) });
    } catch (err) {
      throw new StoreUnavailableError(this.name, { cause: err });
    }
  }

  async put(carPath: string, cid: string): Promise<void> {
    const form = new FormData();
    form.append('file', await openAsBlob(carPath), `${cid}.car`);
    const res = await this.call('dag/import?pin-roots=true&stats=false', { body: form }, IMPORT_TIMEOUT_MS);
    const text = await res.text();
    if (!res.ok) throw new Error(`${this.name}: dag/import answered ${res.status}: ${text.slice(0, 300)}`);
    // One JSON line per root: {"Root":{"Cid":{"/":"..."},"PinErrorMsg":""}}.
    const roots = text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { Root?: { Cid: { '/': string }; PinErrorMsg: string } });
    const root = roots.find((r) => r.Root?.Cid['/'] === cid)?.Root;
    if (!root) throw new Error(`${this.name}: dag/import did not report the root ${cid}`);
    if (root.PinErrorMsg) throw new Error(`${this.name}: ${cid} imported but not pinned: ${root.PinErrorMsg}`);
  }

  async get(cid: string): Promise<AsyncIterable<Uint8Array>> {
    // Offline first: a block the node does not hold is an error at once, not a search of the network.
    const res = await this.call(`dag/export?arg=${encodeURIComponent(cid)}&progress=false&offline=true`, {}, CONNECT_TIMEOUT_MS);
    if (!res.ok || !res.body) {
      const text = await res.text();
      if (res.status === 500 && /not found|no link named|block was not found/i.test(text)) throw new SnapshotNotFoundError(this.name, cid);
      throw new Error(`${this.name}: dag/export answered ${res.status}: ${text.slice(0, 300)}`);
    }
    return Readable.fromWeb(res.body as WebReadableStream<Uint8Array>);
  }
}
