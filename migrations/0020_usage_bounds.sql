-- Up Migration

-- Usage a node claims is billed only within a bound the backbone computes from the output it delivered
-- (src/domain/usage-bounds.ts). A model whose tokenizer is registered has its output counted exactly; any
-- other model's claim is bounded by the output's UTF-8 bytes times `max_tokens_per_byte` (1 by default: a
-- byte-level BPE token covers at least one byte).
--
-- Tokenizers are content-addressed: `sha256` is the SHA-256 of `tokenizer` (the tokenizer.json text as
-- registered), so a model names exactly one tokenizer and the text can be checked against its name.
CREATE TABLE tokenizers (
  sha256      text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  tokenizer   text NOT NULL,
  config      jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at  timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE models
  ADD COLUMN tokenizer_sha256 text REFERENCES tokenizers(sha256),
  ADD COLUMN max_tokens_per_byte real NOT NULL DEFAULT 1 CHECK (max_tokens_per_byte > 0 AND max_tokens_per_byte <= 8);

-- A node whose claimed tokens per output byte drift from its peers' on the same model loses score by this
-- factor (src/domain/scores.ts), 1 when in line.
ALTER TABLE node_scores ADD COLUMN usage_factor double precision NOT NULL DEFAULT 1;

-- Down Migration
ALTER TABLE node_scores DROP COLUMN usage_factor;
ALTER TABLE models DROP COLUMN max_tokens_per_byte, DROP COLUMN tokenizer_sha256;
DROP TABLE tokenizers;
