-- Up Migration

-- Job history that stays bounded (DESIGN.md, "Data lifecycle"):
--   - `jobs` and `job_attempts` become partitioned by day (UTC) of the job's creation; the maintenance
--     role creates partitions ahead of time (create_job_partitions below) and drops those past the live
--     window, once their day is rolled up into `job_rollups`;
--   - the ledger is kept whole (it is the record), and rolled up per day into `ledger_rollups`, each day's
--     hash chained to the previous day's in `ledger_days`.
-- There is no DEFAULT partition: a row for a day without a partition fails loudly at insert, where a
-- default partition would silently collect rows that then block every later attach of that day.

-- ---- Job ids carry their creation time -----------------------------------------------------------
-- New job ids are UUIDv7 (src/domain/job-ids.ts): their first 48 bits are the creation time in
-- milliseconds, and `created_at` is exactly that time (the CHECK below). A lookup by id alone can then
-- name its partition (`created_at = job_id_time(id)`) and touch one index of one partition, however many
-- partitions there are. Ids of another version (jobs created before this migration) give NULL: their
-- lookups visit every partition's primary-key index, until those partitions age out of the window.
CREATE FUNCTION job_id_time(id uuid) RETURNS timestamptz LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT CASE WHEN substr(id::text, 15, 1) = '7'
    THEN timestamptz 'epoch' + ('x' || substr(replace(id::text, '-', ''), 1, 12))::bit(48)::bigint * interval '1 millisecond' END
$$;

-- ---- What references jobs(id) ----------------------------------------------------------------------
-- A foreign key to a partitioned table must name its whole primary key, partition key included. Each
-- reference is decided on its own:
--   job_attempts.job_id      -> (job_id, job_created_at), and job_attempts is partitioned the same way:
--                               a day's attempts are dropped with (just before) that day's jobs.
--   idempotency_keys.job_id  -> (job_id, job_created_at). Keys live 24 hours (the maintenance sweep
--                               deletes them), far inside the live window; a key still naming a job of
--                               a day being dropped makes the drop fail (DETACH checks), never dangle.
--   quarantine.job_id        -> (job_id, job_created_at). An entry goes with its job's day: past the
--                               live window its payload has long expired, so it can no longer be re-queued.
--   quarantine.requeued_job_id  no foreign key: it names a newer job (in a later partition), which
--                               outlives the entry; it is a pointer for the admin, not a dependency.
--   rcp_records.job_id       no foreign key: contribution points are append-only records that must
--                               outlive the job history (a node's earned points), so they cannot hold a
--                               key that forbids dropping the job's partition.
--   ledger_transactions.job_id  never had one, for the same reason: the ledger outlives the jobs.
ALTER TABLE job_attempts DROP CONSTRAINT job_attempts_job_id_fkey;
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_job_id_fkey;
ALTER TABLE quarantine DROP CONSTRAINT quarantine_job_id_fkey;
ALTER TABLE quarantine DROP CONSTRAINT quarantine_requeued_job_id_fkey;
ALTER TABLE rcp_records DROP CONSTRAINT rcp_records_job_id_fkey;

-- The unpartitioned tables step aside (their data is copied below, then they are dropped).
ALTER TABLE jobs RENAME TO jobs_unpartitioned;
ALTER INDEX jobs_pkey RENAME TO jobs_unpartitioned_pkey;
ALTER INDEX jobs_namespace_created RENAME TO jobs_unpartitioned_namespace_created;
ALTER INDEX jobs_unfinished_deadline RENAME TO jobs_unpartitioned_unfinished_deadline;
ALTER INDEX jobs_unpublished RENAME TO jobs_unpartitioned_unpublished;
ALTER INDEX jobs_finished RENAME TO jobs_unpartitioned_finished;
ALTER TABLE job_attempts RENAME TO job_attempts_unpartitioned;
ALTER INDEX job_attempts_pkey RENAME TO job_attempts_unpartitioned_pkey;

-- The job row is also the outbox: `published_at` stays NULL until RabbitMQ confirmed the message (see 0001).
CREATE TABLE jobs (
  id                  uuid NOT NULL,
  namespace_id        uuid NOT NULL REFERENCES namespaces(id),
  api_key_id          uuid NOT NULL REFERENCES api_keys(id),
  model               text NOT NULL REFERENCES models(name),
  status              text NOT NULL CHECK (status IN ('queued', 'running', 'completed', 'failed', 'expired', 'cancelled')),
  attempt             integer NOT NULL DEFAULT 0,
  max_attempts        integer NOT NULL CHECK (max_attempts > 0),
  node_id             text REFERENCES nodes(id),
  max_tokens          integer NOT NULL CHECK (max_tokens > 0),
  prompt_tokens_bound integer NOT NULL CHECK (prompt_tokens_bound > 0),
  hold_micro          bigint NOT NULL CHECK (hold_micro >= 0),
  charged_micro       bigint CHECK (charged_micro >= 0 AND charged_micro <= hold_micro),
  input_price_micro   bigint NOT NULL,
  output_price_micro  bigint NOT NULL,
  min_charge_micro    bigint NOT NULL DEFAULT 0 CHECK (min_charge_micro >= 0),
  prompt_tokens       integer,
  completion_tokens   integer,
  error_code          text,
  error_message       text,
  created_at          timestamptz NOT NULL DEFAULT now(),
  deadline_at         timestamptz NOT NULL,
  published_at        timestamptz,
  started_at          timestamptz,
  finished_at         timestamptz,
  PRIMARY KEY (id, created_at),
  CONSTRAINT jobs_finished_iff_terminal CHECK ((status IN ('completed', 'failed', 'expired', 'cancelled')) = (finished_at IS NOT NULL)),
  CONSTRAINT jobs_created_at_from_id CHECK (job_id_time(id) IS NULL OR created_at = job_id_time(id))
) PARTITION BY RANGE (created_at);

-- One row per dispatch of a job to a node; `outcome` is NULL while the attempt runs. `job_created_at` is
-- the job's partition key: the attempt lives in the partition of its job's day.
CREATE TABLE job_attempts (
  job_id          uuid NOT NULL,
  job_created_at  timestamptz NOT NULL,
  attempt         integer NOT NULL,
  node_id         text NOT NULL REFERENCES nodes(id),
  started_at      timestamptz NOT NULL DEFAULT now(),
  ended_at        timestamptz,
  outcome         text CHECK (outcome IN ('completed', 'failed', 'timeout', 'disconnected', 'invalid_result', 'superseded')),
  reason          text,
  PRIMARY KEY (job_id, job_created_at, attempt),
  FOREIGN KEY (job_id, job_created_at) REFERENCES jobs (id, created_at)
) PARTITION BY RANGE (job_created_at);

-- Creates the partitions of `jobs` and `job_attempts` for one UTC day, unless they exist; true when it
-- created them. Each partition is created on its own and then attached: ATTACH takes only a SHARE
-- UPDATE EXCLUSIVE lock on the parent (CREATE TABLE ... PARTITION OF would take ACCESS EXCLUSIVE and
-- stall every job query behind it). Attaching a job_attempts partition clones its foreign key, which
-- briefly locks `jobs` against writes: callers set a lock_timeout and retry on a later run (partitions
-- are made days ahead, so a retry is never late).
CREATE FUNCTION create_job_partitions(day date) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  jobs_part text := 'jobs_' || to_char(day, 'YYYYMMDD');
  attempts_part text := 'job_attempts_' || to_char(day, 'YYYYMMDD');
  lo timestamptz := day::timestamp AT TIME ZONE 'UTC';
  hi timestamptz := (day + 1)::timestamp AT TIME ZONE 'UTC';
BEGIN
  IF to_regclass(jobs_part) IS NOT NULL THEN
    RETURN false;
  END IF;
  EXECUTE format('CREATE TABLE %I (LIKE jobs INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', jobs_part);
  EXECUTE format('ALTER TABLE jobs ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', jobs_part, lo, hi);
  EXECUTE format('CREATE TABLE %I (LIKE job_attempts INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', attempts_part);
  EXECUTE format('ALTER TABLE job_attempts ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', attempts_part, lo, hi);
  RETURN true;
END $$;

-- Drops the partitions of `jobs` and `job_attempts` for one UTC day, and the quarantine entries of that
-- day's jobs; true when there was a partition to drop. The caller checks that the day is rolled up
-- (src/postgres/job-history.repository.ts). DETACH refuses while any row still references the day's jobs
-- (an idempotency key the sweep has not deleted yet): the whole drop then rolls back, to retry later.
CREATE FUNCTION drop_job_partitions(day date) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  jobs_part text := 'jobs_' || to_char(day, 'YYYYMMDD');
  attempts_part text := 'job_attempts_' || to_char(day, 'YYYYMMDD');
BEGIN
  IF to_regclass(jobs_part) IS NULL THEN
    RETURN false;
  END IF;
  DELETE FROM quarantine WHERE job_created_at >= day::timestamp AT TIME ZONE 'UTC' AND job_created_at < (day + 1)::timestamp AT TIME ZONE 'UTC';
  IF to_regclass(attempts_part) IS NOT NULL THEN
    EXECUTE format('DROP TABLE %I', attempts_part);
  END IF;
  EXECUTE format('ALTER TABLE jobs DETACH PARTITION %I', jobs_part);
  EXECUTE format('DROP TABLE %I', jobs_part);
  RETURN true;
END $$;

-- Partitions for every day that has jobs, and for today and the week ahead (the maintenance role keeps
-- that lead from now on).
SELECT create_job_partitions(d)
  FROM (SELECT DISTINCT (created_at AT TIME ZONE 'UTC')::date AS d FROM jobs_unpartitioned
        UNION
        SELECT generate_series(0, 7) + (now() AT TIME ZONE 'UTC')::date) days
 ORDER BY d;

INSERT INTO jobs (id, namespace_id, api_key_id, model, status, attempt, max_attempts, node_id, max_tokens, prompt_tokens_bound,
                  hold_micro, charged_micro, input_price_micro, output_price_micro, min_charge_micro, prompt_tokens, completion_tokens,
                  error_code, error_message, created_at, deadline_at, published_at, started_at, finished_at)
SELECT id, namespace_id, api_key_id, model, status, attempt, max_attempts, node_id, max_tokens, prompt_tokens_bound,
       hold_micro, charged_micro, input_price_micro, output_price_micro, min_charge_micro, prompt_tokens, completion_tokens,
       error_code, error_message, created_at, deadline_at, published_at, started_at, finished_at
  FROM jobs_unpartitioned;

INSERT INTO job_attempts (job_id, job_created_at, attempt, node_id, started_at, ended_at, outcome, reason)
SELECT a.job_id, j.created_at, a.attempt, a.node_id, a.started_at, a.ended_at, a.outcome, a.reason
  FROM job_attempts_unpartitioned a JOIN jobs_unpartitioned j ON j.id = a.job_id;

-- Indexes on the parent cascade to every partition, present and future (built after the copy: faster).
CREATE INDEX jobs_namespace_created ON jobs (namespace_id, created_at DESC);
CREATE INDEX jobs_unfinished_deadline ON jobs (deadline_at) WHERE finished_at IS NULL;
CREATE INDEX jobs_unpublished ON jobs (created_at) WHERE published_at IS NULL AND finished_at IS NULL;
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;

ALTER TABLE idempotency_keys ADD COLUMN job_created_at timestamptz;
UPDATE idempotency_keys k SET job_created_at = j.created_at FROM jobs_unpartitioned j WHERE j.id = k.job_id;
ALTER TABLE idempotency_keys ALTER COLUMN job_created_at SET NOT NULL;
ALTER TABLE idempotency_keys ADD CONSTRAINT idempotency_keys_job_fkey FOREIGN KEY (job_id, job_created_at) REFERENCES jobs (id, created_at);

ALTER TABLE quarantine ADD COLUMN job_created_at timestamptz;
UPDATE quarantine q SET job_created_at = j.created_at FROM jobs_unpartitioned j WHERE j.id = q.job_id;
ALTER TABLE quarantine ALTER COLUMN job_created_at SET NOT NULL;
ALTER TABLE quarantine ADD CONSTRAINT quarantine_job_fkey FOREIGN KEY (job_id, job_created_at) REFERENCES jobs (id, created_at);
-- A day's entries are deleted just before that day's partition is dropped.
CREATE INDEX quarantine_job_created ON quarantine (job_created_at);

DROP TABLE job_attempts_unpartitioned, jobs_unpartitioned;

-- ---- Job rollups ----------------------------------------------------------------------------------
-- One row per closed day (UTC, of the jobs' creation), namespace, API key, model, node and final status.
-- A day is rolled up once no job created that day can still change (past the longest deadline, every job
-- finished); rolling a day up again replaces its rows, so it never counts twice. Usage reports read these
-- for rolled-up days and the raw jobs for the others (src/space/usage.service.ts).
CREATE TABLE job_rollups (
  day                date NOT NULL,
  namespace_id       uuid NOT NULL REFERENCES namespaces(id),
  api_key_id         uuid NOT NULL REFERENCES api_keys(id),
  model              text NOT NULL REFERENCES models(name),
  node_id            text REFERENCES nodes(id), -- NULL: jobs that ended before any node ran them
  status             text NOT NULL,
  jobs               integer NOT NULL CHECK (jobs > 0),
  prompt_tokens      bigint NOT NULL,
  completion_tokens  bigint NOT NULL,
  charged_micro      bigint NOT NULL,
  -- Latency: submission to finish (created_at to finished_at), in milliseconds.
  latency_ms_sum     bigint NOT NULL,
  latency_ms_max     bigint NOT NULL,
  UNIQUE NULLS NOT DISTINCT (day, namespace_id, api_key_id, model, node_id, status)
);
CREATE INDEX job_rollups_namespace_day ON job_rollups (namespace_id, day);

-- The days rolled up, with the totals the rollup took from the raw rows (checked again when the raw
-- partition is dropped).
CREATE TABLE job_rollup_days (
  day            date PRIMARY KEY,
  jobs           bigint NOT NULL,
  charged_micro  bigint NOT NULL,
  rolled_up_at   timestamptz NOT NULL DEFAULT now(),
  -- Set when the day's raw partitions are dropped: from then on its rollup is all there is.
  raw_dropped_at timestamptz
);

-- ---- Ledger rollups, chained per day ----------------------------------------------------------------
-- The day of a ledger transaction is the UTC day of its created_at (its database transaction's start).
CREATE INDEX ledger_transactions_created ON ledger_transactions (created_at);

-- Per closed day and ledger account: how many entries, their debits (negative amounts, as a positive
-- sum), credits (positive amounts) and net (credits - debits = the change in the account's balance).
CREATE TABLE ledger_rollups (
  day            date NOT NULL,
  account_id     bigint NOT NULL REFERENCES ledger_accounts(id),
  entries        integer NOT NULL CHECK (entries > 0),
  debits_micro   bigint NOT NULL CHECK (debits_micro >= 0),
  credits_micro  bigint NOT NULL CHECK (credits_micro >= 0),
  net_micro      bigint NOT NULL,
  PRIMARY KEY (day, account_id)
);

-- One row per day, without gaps from the ledger's first day: hash = sha256(prev_hash || canonical
-- encoding of the day, its rollup rows and `entries_digest`), where entries_digest is the sha256 of the
-- day's entries in id order (src/domain/ledger-chain.ts). prev_hash is the previous day's hash (32 zero
-- bytes for the first day). Changing any rollup row, digest or hash breaks the chain at that day;
-- `resultity admin ledger-verify` recomputes it and names the first day that breaks.
CREATE TABLE ledger_days (
  day             date PRIMARY KEY,
  entries         bigint NOT NULL CHECK (entries >= 0),
  entries_digest  bytea NOT NULL CHECK (length(entries_digest) = 32),
  prev_hash       bytea NOT NULL CHECK (length(prev_hash) = 32),
  hash            bytea NOT NULL CHECK (length(hash) = 32),
  rolled_up_at    timestamptz NOT NULL DEFAULT now()
);

-- Append-only, like the ledger they summarise.
CREATE TRIGGER ledger_rollups_append_only BEFORE UPDATE OR DELETE ON ledger_rollups
  FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_days_append_only BEFORE UPDATE OR DELETE ON ledger_days
  FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();

-- Down Migration
-- Back to unpartitioned tables (rollups and the ledger chain are dropped; raw jobs already dropped by
-- the maintenance role cannot come back).
DROP TABLE ledger_days, ledger_rollups, job_rollup_days, job_rollups;
DROP INDEX ledger_transactions_created;

CREATE TABLE jobs_unpartitioned (LIKE jobs INCLUDING DEFAULTS);
INSERT INTO jobs_unpartitioned SELECT * FROM jobs;
CREATE TABLE job_attempts_unpartitioned (LIKE job_attempts INCLUDING DEFAULTS);
INSERT INTO job_attempts_unpartitioned SELECT * FROM job_attempts;
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_job_fkey, DROP COLUMN job_created_at;
DROP INDEX quarantine_job_created;
ALTER TABLE quarantine DROP CONSTRAINT quarantine_job_fkey, DROP COLUMN job_created_at;
DROP TABLE job_attempts, jobs;
DROP FUNCTION create_job_partitions, drop_job_partitions, job_id_time;

ALTER TABLE jobs_unpartitioned RENAME TO jobs;
ALTER TABLE jobs ADD PRIMARY KEY (id),
  ADD FOREIGN KEY (namespace_id) REFERENCES namespaces(id),
  ADD FOREIGN KEY (api_key_id) REFERENCES api_keys(id),
  ADD FOREIGN KEY (model) REFERENCES models(name),
  ADD FOREIGN KEY (node_id) REFERENCES nodes(id),
  ADD CHECK (status IN ('queued', 'running', 'completed', 'failed', 'expired', 'cancelled')),
  ADD CHECK (max_attempts > 0),
  ADD CHECK (max_tokens > 0),
  ADD CHECK (prompt_tokens_bound > 0),
  ADD CHECK (hold_micro >= 0),
  ADD CHECK (charged_micro >= 0 AND charged_micro <= hold_micro),
  ADD CHECK (min_charge_micro >= 0),
  ADD CHECK ((status IN ('completed', 'failed', 'expired', 'cancelled')) = (finished_at IS NOT NULL));
CREATE INDEX jobs_namespace_created ON jobs (namespace_id, created_at DESC);
CREATE INDEX jobs_unfinished_deadline ON jobs (deadline_at) WHERE finished_at IS NULL;
CREATE INDEX jobs_unpublished ON jobs (created_at) WHERE published_at IS NULL AND finished_at IS NULL;
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;

ALTER TABLE job_attempts_unpartitioned RENAME TO job_attempts;
ALTER TABLE job_attempts DROP COLUMN job_created_at;
ALTER TABLE job_attempts ADD PRIMARY KEY (job_id, attempt),
  ADD FOREIGN KEY (job_id) REFERENCES jobs(id),
  ADD FOREIGN KEY (node_id) REFERENCES nodes(id),
  ADD CHECK (outcome IN ('completed', 'failed', 'timeout', 'disconnected', 'invalid_result', 'superseded'));

ALTER TABLE idempotency_keys ADD FOREIGN KEY (job_id) REFERENCES jobs(id);
ALTER TABLE quarantine ADD FOREIGN KEY (job_id) REFERENCES jobs(id);
-- NOT VALID: these may name jobs whose partitions were dropped; new rows are checked.
ALTER TABLE quarantine ADD FOREIGN KEY (requeued_job_id) REFERENCES jobs(id) NOT VALID;
ALTER TABLE rcp_records ADD FOREIGN KEY (job_id) REFERENCES jobs(id) NOT VALID;
