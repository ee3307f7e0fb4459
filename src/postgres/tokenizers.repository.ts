// Registered tokenizers, content-addressed by the SHA-256 of their tokenizer.json text (migration 0020).
import type { Queryable } from './db.js';

export interface TokenizerRow {
  sha256: string;
  tokenizer: string;
  config: Record<string, unknown>;
}

/** Stores a tokenizer under its hash (the caller computed it from `tokenizer`); a second put of the same one is a no-op. */
export async function insertTokenizer(q: Queryable, t: TokenizerRow): Promise<void> {
  await q.query(`INSERT INTO tokenizers (sha256, tokenizer, config) VALUES ($1, $2, $3) ON CONFLICT (sha256) DO NOTHING`, [t.sha256, t.tokenizer, JSON.stringify(t.config)]);
}

export async function findTokenizer(q: Queryable, sha256: string): Promise<TokenizerRow | null> {
  const r = await q.query<TokenizerRow>(`SELECT sha256, tokenizer, config FROM tokenizers WHERE sha256 = $1`, [sha256]);
  return r.rows[0] ?? null;
}
