-- Up Migration

-- Space: a namespace's retention plan (issue 10). Kept on the namespace row, so that the accept path reads
-- it from the catalogue's in-process copy (invalidated by the namespaces trigger's NOTIFY): no statement
-- is added per job.
--   zero      no prompt or output is written to MongoDB;
--   standard  the platform's PAYLOAD_RETENTION_HOURS, free;
--   extended  retention_days (1..SPACE_MAX_RETENTION_DAYS, checked by the service), billed per GiB-day.
ALTER TABLE namespaces ADD COLUMN retention_plan text NOT NULL DEFAULT 'standard'
  CHECK (retention_plan IN ('zero', 'standard', 'extended'));
ALTER TABLE namespaces ADD COLUMN retention_days int CHECK (retention_days BETWEEN 1 AND 3650);
ALTER TABLE namespaces ADD CONSTRAINT namespaces_retention_plan_days
  CHECK ((retention_plan = 'extended') = (retention_days IS NOT NULL));

-- Storage charges: a transfer from the namespace to the platform, with no job.
ALTER TABLE ledger_transactions DROP CONSTRAINT ledger_transactions_kind_check;
ALTER TABLE ledger_transactions ADD CONSTRAINT ledger_transactions_kind_check
  CHECK (kind IN ('topup', 'hold', 'capture', 'release', 'withdrawal', 'storage'));
ALTER TABLE ledger_transactions DROP CONSTRAINT ledger_transactions_job_check;
ALTER TABLE ledger_transactions ADD CONSTRAINT ledger_transactions_job_check
  CHECK ((kind IN ('topup', 'withdrawal', 'storage')) = (job_id IS NULL));

-- One metering per namespace and day: what MongoDB held for it in extended classes, and what it cost
-- (0 when it could not pay: the plan then fell back). The primary key makes a day's charge happen once,
-- whichever instance meters it.
CREATE TABLE space_meterings (
  namespace_id    uuid NOT NULL REFERENCES namespaces(id),
  day             date NOT NULL,
  stored_bytes    bigint NOT NULL CHECK (stored_bytes >= 0),
  charged_micro   bigint NOT NULL CHECK (charged_micro >= 0),
  ledger_txn_id   bigint REFERENCES ledger_transactions(id),
  fell_back       boolean NOT NULL DEFAULT false,
  metered_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (namespace_id, day)
);

-- What happened to a namespace's plan, for its owner to see (changes, fallbacks).
CREATE TABLE space_events (
  id            bigserial PRIMARY KEY,
  namespace_id  uuid NOT NULL REFERENCES namespaces(id),
  at            timestamptz NOT NULL DEFAULT now(),
  kind          text NOT NULL CHECK (kind IN ('plan_changed', 'fell_back')),
  detail        jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX space_events_namespace ON space_events (namespace_id, at DESC);

-- Down Migration
DROP TABLE space_events;
DROP TABLE space_meterings;
ALTER TABLE ledger_transactions DROP CONSTRAINT ledger_transactions_job_check;
ALTER TABLE ledger_transactions ADD CONSTRAINT ledger_transactions_job_check
  CHECK ((kind IN ('topup', 'withdrawal')) = (job_id IS NULL));
ALTER TABLE ledger_transactions DROP CONSTRAINT ledger_transactions_kind_check;
ALTER TABLE ledger_transactions ADD CONSTRAINT ledger_transactions_kind_check
  CHECK (kind IN ('topup', 'hold', 'capture', 'release', 'withdrawal'));
ALTER TABLE namespaces DROP CONSTRAINT namespaces_retention_plan_days;
ALTER TABLE namespaces DROP COLUMN retention_days;
ALTER TABLE namespaces DROP COLUMN retention_plan;
