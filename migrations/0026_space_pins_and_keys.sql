-- Up Migration

-- Space (issue 10): pinned jobs, and the keys that encrypt payloads at rest.

-- Jobs their namespace's owner keeps past the plan (a copy of their payload documents lives in the
-- namespace's own pinned collection in MongoDB, which no expiry pass drops). `bytes` is the copy's size,
-- metered in the same GiB-days as extended retention.
CREATE TABLE space_pins (
  job_id        uuid PRIMARY KEY,
  namespace_id  uuid NOT NULL REFERENCES namespaces(id),
  pinned_at     timestamptz NOT NULL DEFAULT now(),
  bytes         bigint NOT NULL CHECK (bytes >= 0)
);
CREATE INDEX space_pins_namespace ON space_pins (namespace_id, pinned_at DESC);

ALTER TABLE space_events DROP CONSTRAINT space_events_kind_check;
ALTER TABLE space_events ADD CONSTRAINT space_events_kind_check
  CHECK (kind IN ('plan_changed', 'fell_back', 'pinned', 'unpinned', 'job_shredded'));

-- Envelope encryption. A namespace's data key (32 random bytes) is kept only wrapped (AES-256-GCM) by a
-- master key from the environment, named by its version; rotation re-wraps these rows, never a payload.
-- Crypto-shredding a namespace sets `wrapped` to NULL: whatever ciphertext is left anywhere is unreadable.
CREATE TABLE namespace_keys (
  namespace_id    uuid PRIMARY KEY REFERENCES namespaces(id),
  master_version  int NOT NULL CHECK (master_version >= 1),
  wrapped         bytea,
  created_at      timestamptz NOT NULL DEFAULT now(),
  rewrapped_at    timestamptz,
  shredded_at     timestamptz,
  CHECK ((wrapped IS NULL) = (shredded_at IS NOT NULL))
);

-- One row per sealed payload document: the salt that, with its namespace's data key, derives the document's
-- own key (HKDF-SHA256). The document names its row (`key_id`) but never holds the salt, so deleting a job's
-- rows shreds that job alone, at once, whatever copies of its documents exist.
CREATE TABLE payload_keys (
  id            uuid PRIMARY KEY,  -- made by the writer, so that the document is sealed without waiting for this row
  job_id        uuid NOT NULL,
  namespace_id  uuid NOT NULL REFERENCES namespaces(id),
  salt          bytea NOT NULL CHECK (length(salt) = 32),
  created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payload_keys_job ON payload_keys (job_id);
CREATE INDEX payload_keys_created ON payload_keys (created_at);

-- A namespace marked deleted loses its data key in the same transaction: its payloads are unreadable from
-- that commit on, before the sweeper removes their bytes (gate/admin.service.ts deletes by this mark).
CREATE FUNCTION namespace_keys_shred() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE namespace_keys SET wrapped = NULL, shredded_at = now() WHERE namespace_id = NEW.id AND wrapped IS NOT NULL;
  DELETE FROM payload_keys WHERE namespace_id = NEW.id;
  RETURN NEW;
END $$;
CREATE TRIGGER namespaces_shred_keys AFTER UPDATE OF deleted_at ON namespaces
  FOR EACH ROW WHEN (OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL) EXECUTE FUNCTION namespace_keys_shred();

-- Down Migration
DROP TRIGGER namespaces_shred_keys ON namespaces;
DROP FUNCTION namespace_keys_shred();
DROP TABLE payload_keys;
DROP TABLE namespace_keys;
ALTER TABLE space_events DROP CONSTRAINT space_events_kind_check;
ALTER TABLE space_events ADD CONSTRAINT space_events_kind_check CHECK (kind IN ('plan_changed', 'fell_back'));
DROP TABLE space_pins;
