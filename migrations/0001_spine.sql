-- Up Migration

-- Accounts own namespaces (consumers) and nodes (operators). An account may be both.
CREATE TABLE accounts (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE namespaces (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  account_id  uuid NOT NULL REFERENCES accounts(id),
  name        text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
  created_at  timestamptz NOT NULL DEFAULT now(),
  UNIQUE (account_id, name)
);

-- API keys are stored as SHA-256 of the secret (the secret has 256 bits of entropy, so a fast hash is
-- enough); only a short prefix is kept in clear, to recognise a key in listings.
CREATE TABLE api_keys (
  id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  namespace_id      uuid NOT NULL REFERENCES namespaces(id),
  key_hash          bytea NOT NULL UNIQUE CHECK (length(key_hash) = 32),
  key_prefix        text NOT NULL,
  name              text NOT NULL DEFAULT '',
  rate_limit_rps    integer CHECK (rate_limit_rps > 0),
  rate_limit_burst  integer CHECK (rate_limit_burst > 0),
  created_at        timestamptz NOT NULL DEFAULT now(),
  revoked_at        timestamptz
);
CREATE INDEX api_keys_namespace ON api_keys (namespace_id);

-- Prices are integer micro-credits (1 credit = 1,000,000) per token.
CREATE TABLE models (
  name                text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$'),
  input_price_micro   bigint NOT NULL CHECK (input_price_micro >= 0),
  output_price_micro  bigint NOT NULL CHECK (output_price_micro >= 0),
  context_tokens      integer NOT NULL DEFAULT 8192 CHECK (context_tokens > 0),
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now()
);

-- A node is its secp256k1 key; its id is the key's EVM address. It is bound to one operator account.
CREATE TABLE nodes (
  id                   text PRIMARY KEY CHECK (id ~ '^0x[0-9a-f]{40}$'),
  operator_account_id  uuid NOT NULL REFERENCES accounts(id),
  created_at           timestamptz NOT NULL DEFAULT now(),
  last_registered_at   timestamptz NOT NULL DEFAULT now()
);

-- ---- The credit ledger: double-entry, append-only -------------------------------------------------
-- Every movement is a transaction whose entries sum to zero (checked at commit by a deferred trigger),
-- so the sum over all accounts is zero at every moment. `balance` is a cache of the sum of an account's
-- entries, maintained in the same transaction; only the funding account (the source of top-ups) may go
-- negative. The network-wide receiving accounts (operator_earnings, platform_revenue) keep no cache
-- (it would serialise every settlement on one row): their balance is computed from their entries and
-- their `balance` stays 0 (src/postgres/ledger.repository.ts).
CREATE TABLE ledger_accounts (
  id        bigserial PRIMARY KEY,
  kind      text NOT NULL CHECK (kind IN ('funding', 'ns_available', 'ns_held', 'operator_earnings', 'platform_revenue')),
  owner_id  uuid,
  balance   bigint NOT NULL DEFAULT 0,
  UNIQUE NULLS NOT DISTINCT (kind, owner_id),
  CHECK (kind = 'funding' OR balance >= 0),
  CHECK ((kind IN ('funding', 'platform_revenue')) = (owner_id IS NULL))
);

CREATE TABLE ledger_transactions (
  id          bigserial PRIMARY KEY,
  kind        text NOT NULL CHECK (kind IN ('topup', 'hold', 'capture', 'release')),
  job_id      uuid,
  memo        text NOT NULL DEFAULT '',
  created_at  timestamptz NOT NULL DEFAULT now(),
  CHECK ((kind = 'topup') = (job_id IS NULL))
);
-- A job is held once, captured at most once and released at most once: the database itself refuses a
-- second settlement, whatever the application does.
CREATE UNIQUE INDEX ledger_transactions_job_kind ON ledger_transactions (job_id, kind) WHERE job_id IS NOT NULL;

CREATE TABLE ledger_entries (
  id          bigserial PRIMARY KEY,
  txn_id      bigint NOT NULL REFERENCES ledger_transactions(id),
  account_id  bigint NOT NULL REFERENCES ledger_accounts(id),
  amount      bigint NOT NULL CHECK (amount <> 0)
);
CREATE INDEX ledger_entries_txn ON ledger_entries (txn_id);
CREATE INDEX ledger_entries_account ON ledger_entries (account_id);

CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the ledger is append-only: % on % refused', TG_OP, TG_TABLE_NAME;
END $$;
CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
  FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_transactions_append_only BEFORE UPDATE OR DELETE ON ledger_transactions
  FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();

CREATE FUNCTION ledger_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE total numeric;
BEGIN
  SELECT sum(amount) INTO total FROM ledger_entries WHERE txn_id = NEW.txn_id;
  IF total <> 0 THEN
    RAISE EXCEPTION 'ledger transaction % does not balance (sum %)', NEW.txn_id, total;
  END IF;
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER ledger_entries_balanced AFTER INSERT ON ledger_entries
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_balanced();

INSERT INTO ledger_accounts (kind, owner_id) VALUES ('funding', NULL), ('platform_revenue', NULL);

-- ---- Jobs ----------------------------------------------------------------------------------------
-- The job row is also the outbox: `published_at` stays NULL until RabbitMQ confirmed the message, and
-- the maintenance role republishes any job left unpublished (a crash between commit and publish).
CREATE TABLE jobs (
  id                  uuid PRIMARY KEY,
  namespace_id        uuid NOT NULL REFERENCES namespaces(id),
  api_key_id          uuid NOT NULL REFERENCES api_keys(id),
  model               text NOT NULL REFERENCES models(name),
  status              text NOT NULL CHECK (status IN ('queued', 'running', 'completed', 'failed', 'expired', 'cancelled')),
  attempt             integer NOT NULL DEFAULT 0,
  max_attempts        integer NOT NULL CHECK (max_attempts > 0),
  node_id             text REFERENCES nodes(id),
  -- What the node may claim: usage above these bounds is an invalid result, not a bigger bill.
  max_tokens          integer NOT NULL CHECK (max_tokens > 0),
  prompt_tokens_bound integer NOT NULL CHECK (prompt_tokens_bound > 0),
  hold_micro          bigint NOT NULL CHECK (hold_micro >= 0),
  charged_micro       bigint CHECK (charged_micro >= 0 AND charged_micro <= hold_micro),
  input_price_micro   bigint NOT NULL,
  output_price_micro  bigint NOT NULL,
  prompt_tokens       integer,
  completion_tokens   integer,
  error_code          text,
  error_message       text,
  created_at          timestamptz NOT NULL DEFAULT now(),
  deadline_at         timestamptz NOT NULL,
  published_at        timestamptz,
  started_at          timestamptz,
  finished_at         timestamptz,
  CHECK ((status IN ('completed', 'failed', 'expired', 'cancelled')) = (finished_at IS NOT NULL))
);
CREATE INDEX jobs_namespace_created ON jobs (namespace_id, created_at DESC);
CREATE INDEX jobs_unfinished_deadline ON jobs (deadline_at) WHERE finished_at IS NULL;
CREATE INDEX jobs_unpublished ON jobs (created_at) WHERE published_at IS NULL AND finished_at IS NULL;

-- One row per dispatch of a job to a node; `outcome` is NULL while the attempt runs.
CREATE TABLE job_attempts (
  job_id      uuid NOT NULL REFERENCES jobs(id),
  attempt     integer NOT NULL,
  node_id     text NOT NULL REFERENCES nodes(id),
  started_at  timestamptz NOT NULL DEFAULT now(),
  ended_at    timestamptz,
  outcome     text CHECK (outcome IN ('completed', 'failed', 'timeout', 'disconnected', 'invalid_result', 'superseded')),
  reason      text,
  PRIMARY KEY (job_id, attempt)
);

-- Down Migration
DROP TABLE job_attempts, jobs, ledger_entries, ledger_transactions, ledger_accounts, nodes, models, api_keys, namespaces, accounts;
DROP FUNCTION ledger_check_balanced, ledger_refuse_change;
