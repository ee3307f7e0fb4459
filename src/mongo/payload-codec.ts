// How payload content is stored: outputs in a form FerretDB v1 accepts, and sizes for metering.
import type { JobOutput } from '../domain/protocol.js';

/**
 * An output as stored. FerretDB v1 refuses arrays nested in arrays ("nested arrays are not supported"),
 * which an embedding job's vectors are: they are stored as `embeddingsF64`, each vector its float64
 * components little-endian in base64 (exact, and as compact as JSON numbers), on MongoDB as on FerretDB.
 */
export type StoredOutput = Omit<JobOutput, 'embeddings'> & { embeddingsF64?: string[] };

export function toStored(output: JobOutput): StoredOutput {
  const { embeddings, ...rest } = output;
  if (embeddings === undefined) return rest;
  return {
    ...rest,
    embeddingsF64: embeddings.map((v) => {
      const bytes = Buffer.alloc(v.length * 8);
      v.forEach((x, i) => bytes.writeDoubleLE(x, i * 8));
      return bytes.toString('base64');
    }),
  };
}

export function fromStored(stored: StoredOutput): JobOutput {
  const { embeddingsF64, ...rest } = stored;
  if (embeddingsF64 === undefined) return rest;
  return {
    ...rest,
    embeddings: embeddingsF64.map((b64) => {
      const bytes = Buffer.from(b64, 'base64');
      return Array.from({ length: bytes.length / 8 }, (_, i) => bytes.readDoubleLE(i * 8));
    }),
  };
}

/** A payload's size as stored, near enough to bill by (its JSON; BSON differs by a few bytes per field). */
export function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value));
}

