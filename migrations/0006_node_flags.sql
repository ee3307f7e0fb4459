-- Up Migration

-- Node flags, set by the admin (or by rules): the authoritative copy. Redis holds a mirror that the
-- scheduler checks at every reservation; the maintenance role rewrites the mirror from here on every
-- tick, so flags survive the loss of Redis.
--   paused        no new jobs (an operator's or admin's pause)
--   frozen        no new jobs (an admin's hold pending review)
--   shadow_banned no new jobs, and nothing tells the node: it is shown as normal to its operator
--   cooldown_until no new jobs until then (after repeated failures)
CREATE TABLE node_flags (
  node_id         text PRIMARY KEY REFERENCES nodes(id),
  paused          boolean NOT NULL DEFAULT false,
  frozen          boolean NOT NULL DEFAULT false,
  shadow_banned   boolean NOT NULL DEFAULT false,
  cooldown_until  timestamptz,
  reason          text NOT NULL DEFAULT '',
  updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Down Migration
DROP TABLE node_flags;
