-- Up Migration

-- The public status API reads the jobs finished in the last minute, once a second per instance.
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;

-- Down Migration
DROP INDEX jobs_finished;
