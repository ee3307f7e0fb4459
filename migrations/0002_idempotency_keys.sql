-- Up Migration

-- Idempotency-Key on job submission: a retried request with the same key (per namespace, within 24
-- hours) gets the first request's job instead of a second job and a second charge. The key row is
-- written in the accept transaction, so two racing requests with one key cannot both create a job.
CREATE TABLE idempotency_keys (
  namespace_id  uuid NOT NULL REFERENCES namespaces(id),
  key           text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
  -- SHA-256 of the canonical request: the same key with a different request is refused, not replayed.
  request_hash  bytea NOT NULL CHECK (length(request_hash) = 32),
  job_id        uuid NOT NULL REFERENCES jobs(id),
  created_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (namespace_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- Down Migration
DROP TABLE idempotency_keys;
