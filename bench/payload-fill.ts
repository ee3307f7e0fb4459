// Pre-stores payload documents in the backbone's payload collection, straight through the driver, for the
// run that measures whether the cost of a job grows with what is stored (issue 8: an `_id` lookup that
// scans the collection in FerretDB 1.x). The documents have the shape the backbone writes (its input,
// result and trace), unexpired, spread over the run's namespaces.
import { randomUUID } from 'node:crypto';
import type { Collection, Document } from 'mongodb';
import { bucketName } from '../src/mongo/payload-buckets.js';

/**
 * The collection the backbone keeps today's inputs in under the default retention class (72 hours): one
 * day's bucket (src/mongo/payload-buckets.ts), the one a job accepted now is read from; or
 * BENCH_PAYLOAD_COLLECTION when set.
 */
export function payloadCollectionName(): Promise<string> {
  return Promise.resolve(process.env.BENCH_PAYLOAD_COLLECTION ?? bucketName('job_payloads', 72, Date.now()));
}

/** Inserts `count` documents in batches; resolves with the number inserted. */
export async function storePayloads(col: Collection<Document>, count: number, model: string, namespaces: string[]): Promise<number> {
  const batch = 1_000;
  const now = Date.now();
  let inserted = 0;
  while (inserted < count) {
    const n = Math.min(batch, count - inserted);
    const docs: Document[] = Array.from({ length: n }, (_, k) => {
      const i = inserted + k;
      const createdAt = new Date(now - (count - i) * 10);
      return {
        _id: randomUUID(),
        namespaceId: namespaces[i % namespaces.length] ?? 'bench',
        model,
        input: { messages: [{ role: 'user', content: `stored request ${i}` }], max_tokens: 16, temperature: 1 },
        results: {
          '1': {
            output: { content: `simulated answer ${i.toString(16).padStart(8, '0')}: node token credit ledger epoch model queue route`, finish_reason: 'stop' },
            usage: { prompt_tokens: 9, completion_tokens: 16, total_tokens: 25 },
          },
        },
        trace: [{ attempt: 1, nodeId: '0x0000000000000000000000000000000000000000', at: createdAt, outcome: 'completed' }],
        createdAt,
        expireAt: new Date(now + 72 * 3_600_000),
      };
    });
    await col.insertMany(docs, { ordered: false });
    inserted += n;
  }
  return inserted;
}
