// Job ids are UUIDv7 (RFC 9562): the first 48 bits are the creation time in Unix milliseconds, the rest
// random. The jobs table is partitioned by day of creation, and a job's `created_at` is exactly the time
// in its id (a CHECK in migrations/0011), so a lookup by id alone can name its partition: one index probe
// in one partition, however many days the table holds.
import { randomBytes } from 'node:crypto';

/** A new job id carrying `nowMs` (default: now) as its creation time. */
export function newJobId(nowMs = Date.now()): string {
  if (!Number.isSafeInteger(nowMs) || nowMs < 0 || nowMs >= 2 ** 48) throw new RangeError(`not a UUIDv7 timestamp: ${nowMs}`);
  const b = randomBytes(16);
  b.writeUIntBE(nowMs, 0, 6);
  b[6] = (b[6]! & 0x0f) | 0x70; // version 7
  b[8] = (b[8]! & 0x3f) | 0x80; // RFC 9562 variant
  const hex = b.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * The creation time a job id carries, which is the job's partition key; null for an id that is not a
 * UUIDv7 (jobs accepted before ids carried their time), whose lookups must visit every partition.
 */
export function jobIdTime(id: string): Date | null {
  // The version nibble alone decides, as in the database's job_id_time(): both must agree on every id.
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) return null;
  return new Date(Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16));
}
