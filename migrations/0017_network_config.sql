-- Up Migration

-- Network config (src/domain/network-config.ts, src/network/network-config.service.ts): every version of
-- the signed document nodes follow, kept forever. `digest` is the sha256 of the document's canonical JSON
-- (RFC 8785); `signature` is the network key's EIP-191 signature over the digest, so that anyone holding
-- the network address can check a stored version without trusting this database.
CREATE TABLE network_configs (
  version       integer PRIMARY KEY CHECK (version >= 1),
  digest        text NOT NULL UNIQUE CHECK (digest ~ '^[0-9a-f]{64}$'),
  document      jsonb NOT NULL CHECK (jsonb_typeof(document) = 'object' AND (document->>'version')::integer = version),
  signature     text NOT NULL CHECK (signature ~ '^0x[0-9a-f]{130}$'),
  published_at  timestamptz NOT NULL DEFAULT now(),
  published_by  text NOT NULL CHECK (length(published_by) BETWEEN 1 AND 200)
);

-- The admin change log: who changed what in the network's state, when, and the value before and after
-- (null: the thing did not exist, or no longer does). Written in the same transaction as the change.
CREATE TABLE admin_changes (
  id          bigserial PRIMARY KEY,
  at          timestamptz NOT NULL DEFAULT now(),
  actor       text NOT NULL CHECK (length(actor) BETWEEN 1 AND 200),
  action      text NOT NULL CHECK (action ~ '^[a-z][a-z0-9_.]{0,63}$'),
  subject     text NOT NULL CHECK (length(subject) <= 300),
  before      jsonb,
  after       jsonb
);
CREATE INDEX admin_changes_subject ON admin_changes (action, subject, id);

-- Both are history: refuse UPDATE, DELETE and TRUNCATE, as the ledger does.
CREATE FUNCTION history_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
END $$;
CREATE TRIGGER network_configs_append_only BEFORE UPDATE OR DELETE ON network_configs
  FOR EACH ROW EXECUTE FUNCTION history_refuse_change();
CREATE TRIGGER network_configs_no_truncate BEFORE TRUNCATE ON network_configs
  FOR EACH STATEMENT EXECUTE FUNCTION history_refuse_change();
CREATE TRIGGER admin_changes_append_only BEFORE UPDATE OR DELETE ON admin_changes
  FOR EACH ROW EXECUTE FUNCTION history_refuse_change();
CREATE TRIGGER admin_changes_no_truncate BEFORE TRUNCATE ON admin_changes
  FOR EACH STATEMENT EXECUTE FUNCTION history_refuse_change();

-- What a job was accepted under: the config version in force and its execution timeout per attempt (the
-- retry limit is max_attempts, already there). NULL on jobs accepted before this migration: the
-- scheduler then uses JOB_ATTEMPT_TIMEOUT_MS, as it did when they were accepted.
ALTER TABLE jobs ADD COLUMN config_version integer;
ALTER TABLE jobs ADD COLUMN attempt_timeout_ms integer CHECK (attempt_timeout_ms > 0);

-- Down Migration
ALTER TABLE jobs DROP COLUMN attempt_timeout_ms;
ALTER TABLE jobs DROP COLUMN config_version;
DROP TABLE admin_changes, network_configs;
DROP FUNCTION history_refuse_change();
