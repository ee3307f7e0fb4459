// The usage rule of each model (domain/usage-bounds.ts), from the in-process catalogue, with the model's
// tokenizer loaded once per process: a tokenizer never changes under its hash, so a loaded one is kept
// (a handful per network), and checking a result costs no engine round trip once the model is known.
import * as tokenizers from '@huggingface/tokenizers';
import { sha256Hex } from '../domain/signatures.js';
import type { TokenCounter, UsageRule } from '../domain/usage-bounds.js';
import type { Db } from '../postgres/db.js';
import { findTokenizer, type TokenizerRow } from '../postgres/tokenizers.repository.js';
import type { Catalog } from './catalog.service.js';

/**
 * The part of the library's Tokenizer used here. Its published declarations import their own files without
 * extensions, which this project's module resolution (NodeNext) cannot follow, so the class is typed here.
 */
interface HfTokenizer {
  encode(text: string, options: { add_special_tokens: boolean }): { ids: number[] };
}
const Tokenizer = tokenizers.Tokenizer as unknown as new (tokenizer: object, config: object) => HfTokenizer;

/** Tokenizers kept loaded per process (each is a few MiB for a large vocabulary). */
const MAX_LOADED = 32;

/**
 * A tokenizer as the backbone counts with it: no special tokens added (those a runtime adds are within
 * SPECIAL_TOKEN_ALLOWANCE). Throws when the library cannot read the tokenizer.
 */
export function tokenCounter(row: Pick<TokenizerRow, 'tokenizer' | 'config'>): TokenCounter {
  const tokenizer = new Tokenizer(JSON.parse(row.tokenizer) as object, row.config);
  return { count: (text) => (text === '' ? 0 : tokenizer.encode(text, { add_special_tokens: false }).ids.length) };
}

export class UsageRules {
  private readonly loaded = new Map<string, Promise<TokenCounter>>();

  constructor(
    private readonly db: Db,
    private readonly catalog: Catalog,
  ) {}

  /** The model's rule; null for a model the catalogue does not know. */
  async ruleFor(model: string): Promise<UsageRule | null> {
    const row = await this.catalog.model(model);
    if (!row) return null;
    return {
      tokenizer: row.tokenizer_sha256 ? await this.tokenizer(row.tokenizer_sha256) : null,
      maxTokensPerByte: row.max_tokens_per_byte,
    };
  }

  private tokenizer(sha256: string): Promise<TokenCounter> {
    let counter = this.loaded.get(sha256);
    if (!counter) {
      if (this.loaded.size >= MAX_LOADED) this.loaded.clear();
      counter = this.load(sha256);
      this.loaded.set(sha256, counter);
      counter.catch(() => this.loaded.delete(sha256)); // a failed load is tried again next time
    }
    return counter;
  }

  private async load(sha256: string): Promise<TokenCounter> {
    const row = await findTokenizer(this.db, sha256);
    if (!row) throw new Error(`tokenizer ${sha256} is not registered`);
    if (sha256Hex(row.tokenizer) !== sha256) throw new Error(`tokenizer ${sha256} does not match its hash`);
    return tokenCounter(row);
  }
}
