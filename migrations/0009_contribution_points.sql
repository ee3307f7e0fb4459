-- Up Migration

-- Contribution points (RCP): append-only records per node and epoch. `job` records come with each
-- completed job (in its settlement transaction); `uptime` records are written once per node when an
-- epoch closes, from the heartbeats counted in Redis during it (losing Redis loses, at most, the uptime
-- of the open epoch).
CREATE TABLE rcp_records (
  id          bigserial PRIMARY KEY,
  node_id     text NOT NULL REFERENCES nodes(id),
  epoch       bigint NOT NULL CHECK (epoch >= 0),
  kind        text NOT NULL CHECK (kind IN ('job', 'uptime')),
  points      bigint NOT NULL CHECK (points >= 0),
  job_id      uuid REFERENCES jobs(id),
  created_at  timestamptz NOT NULL DEFAULT now(),
  CHECK ((kind = 'job') = (job_id IS NOT NULL))
);
CREATE UNIQUE INDEX rcp_records_job ON rcp_records (job_id) WHERE kind = 'job';
CREATE UNIQUE INDEX rcp_records_uptime ON rcp_records (node_id, epoch) WHERE kind = 'uptime';
CREATE INDEX rcp_records_node_epoch ON rcp_records (node_id, epoch);
CREATE TRIGGER rcp_records_append_only BEFORE UPDATE OR DELETE ON rcp_records
  FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();

-- Down Migration
DROP TABLE rcp_records;
