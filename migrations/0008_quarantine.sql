-- Up Migration

-- Jobs that ended without a result (failed or expired), with their reason, for the platform to look at
-- and then re-queue (as a new job, the original staying as it ended) or discard. Written in the same
-- transaction that ends the job. The RabbitMQ quarantine queue carries the same records for consumers
-- of the broker; this table is what the admin API lists.
CREATE TABLE quarantine (
  job_id           uuid PRIMARY KEY REFERENCES jobs(id),
  reason           text NOT NULL,
  quarantined_at   timestamptz NOT NULL DEFAULT now(),
  resolution       text CHECK (resolution IN ('requeued', 'discarded')),
  resolved_at      timestamptz,
  requeued_job_id  uuid REFERENCES jobs(id),
  CHECK ((resolution IS NULL) = (resolved_at IS NULL)),
  CHECK ((resolution = 'requeued') = (requeued_job_id IS NOT NULL))
);
CREATE INDEX quarantine_open ON quarantine (quarantined_at) WHERE resolution IS NULL;

-- Down Migration
DROP TABLE quarantine;
