-- Up Migration

-- Webhooks (issue 12, part 5): a namespace's endpoints, and an outbox of messages written by triggers in
-- the SAME transaction as their event (a job's settlement or failure, a namespace's available credits
-- falling below an endpoint's threshold), so that no event is lost between a commit and a send. The
-- triggers run inside the statements the hot path already makes (settle_jobs' UPDATE jobs, accept_jobs'
-- UPDATE ledger_accounts): no extra round trip or statement, and for a namespace without an endpoint the
-- cost is one probe of an empty part of a partial index.
--
-- The signing secret (`whsec_` + base64, Standard Webhooks) is kept as it is: the backbone signs with it,
-- so it cannot be a hash. It is shown to the owner once, at creation, and never logged.
CREATE TABLE webhook_endpoints (
  id                           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  namespace_id                 uuid NOT NULL REFERENCES namespaces(id),
  url                          text NOT NULL CHECK (url ~ '^https?://'),
  secret                       text NOT NULL CHECK (secret ~ '^whsec_[A-Za-z0-9+/=]+$'),
  events                       text[] NOT NULL CHECK (cardinality(events) > 0 AND events <@ ARRAY['job.completed', 'job.failed', 'credits.low']),
  low_credits_threshold_micro  bigint NOT NULL DEFAULT 1000000 CHECK (low_credits_threshold_micro >= 0),
  description                  text NOT NULL DEFAULT '',
  created_at                   timestamptz NOT NULL DEFAULT now(),
  disabled_at                  timestamptz,
  disabled_reason              text
);
CREATE INDEX webhook_endpoints_live ON webhook_endpoints (namespace_id) WHERE disabled_at IS NULL;

-- One message per endpoint and event; `id` is its `webhook-id` (the receiver's idempotency key).
CREATE TABLE webhook_messages (
  id               text PRIMARY KEY,
  endpoint_id      uuid NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
  event_type       text NOT NULL,
  payload          jsonb NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
  -- Attempts made since it was (re)queued: the index into WEBHOOK_RETRY_SCHEDULE_MS of the next wait.
  attempts         integer NOT NULL DEFAULT 0,
  next_attempt_at  timestamptz NOT NULL DEFAULT now(),
  delivered_at     timestamptz
);
CREATE INDEX webhook_messages_due ON webhook_messages (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_messages_endpoint ON webhook_messages (endpoint_id, created_at DESC);

CREATE TABLE webhook_attempts (
  id               bigserial PRIMARY KEY,
  message_id       text NOT NULL REFERENCES webhook_messages(id) ON DELETE CASCADE,
  at               timestamptz NOT NULL DEFAULT now(),
  response_status  integer,
  error            text,
  duration_ms      integer NOT NULL
);
CREATE INDEX webhook_attempts_message ON webhook_attempts (message_id, at);

CREATE FUNCTION webhook_message_id() RETURNS text LANGUAGE sql AS $$ SELECT 'msg_' || replace(gen_random_uuid()::text, '-', '') $$;

CREATE FUNCTION webhook_credits_text(micro bigint) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT to_char(micro / 1000000.0, 'FM999999999999990.000000')
$$;

-- job.completed / job.failed (failed or expired), written as the job's row takes its terminal status.
CREATE FUNCTION webhook_job_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  ev text := CASE WHEN NEW.status = 'completed' THEN 'job.completed' ELSE 'job.failed' END;
BEGIN
  INSERT INTO webhook_messages (id, endpoint_id, event_type, payload)
  SELECT webhook_message_id(), e.id, ev,
         jsonb_build_object(
           'type', ev,
           'timestamp', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
           'data', jsonb_build_object(
             'job_id', NEW.id, 'namespace_id', NEW.namespace_id, 'model', NEW.model, 'status', NEW.status,
             'credits_charged', webhook_credits_text(coalesce(NEW.charged_micro, 0)),
             'usage', CASE WHEN NEW.status = 'completed' THEN jsonb_build_object('prompt_tokens', NEW.prompt_tokens, 'completion_tokens', NEW.completion_tokens) END,
             'error', CASE WHEN NEW.status <> 'completed' THEN jsonb_build_object('code', NEW.error_code, 'message', NEW.error_message) END))
    FROM webhook_endpoints e
   WHERE e.namespace_id = NEW.namespace_id AND e.disabled_at IS NULL AND ev = ANY (e.events);
  RETURN NULL;
END $$;
CREATE TRIGGER jobs_webhook_events AFTER UPDATE OF status ON jobs FOR EACH ROW
  WHEN (OLD.status IS DISTINCT FROM NEW.status AND NEW.status IN ('completed', 'failed', 'expired'))
  EXECUTE FUNCTION webhook_job_event();

-- credits.low: the namespace's available credits crossed an endpoint's threshold downwards (once per
-- crossing: a top-up above it re-arms it).
CREATE FUNCTION webhook_credits_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO webhook_messages (id, endpoint_id, event_type, payload)
  SELECT webhook_message_id(), e.id, 'credits.low',
         jsonb_build_object(
           'type', 'credits.low',
           'timestamp', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
           'data', jsonb_build_object('namespace_id', NEW.owner_id, 'available', webhook_credits_text(NEW.balance),
                                      'threshold', webhook_credits_text(e.low_credits_threshold_micro)))
    FROM webhook_endpoints e
   WHERE e.namespace_id = NEW.owner_id AND e.disabled_at IS NULL AND 'credits.low' = ANY (e.events)
     AND OLD.balance >= e.low_credits_threshold_micro AND NEW.balance < e.low_credits_threshold_micro;
  RETURN NULL;
END $$;
CREATE TRIGGER ledger_accounts_webhook_events AFTER UPDATE OF balance ON ledger_accounts FOR EACH ROW
  WHEN (NEW.kind = 'ns_available' AND NEW.balance < OLD.balance)
  EXECUTE FUNCTION webhook_credits_event();

-- Down Migration
DROP TRIGGER ledger_accounts_webhook_events ON ledger_accounts;
DROP TRIGGER jobs_webhook_events ON jobs;
DROP FUNCTION webhook_credits_event();
DROP FUNCTION webhook_job_event();
DROP FUNCTION webhook_credits_text(bigint);
DROP FUNCTION webhook_message_id();
DROP TABLE webhook_attempts;
DROP TABLE webhook_messages;
DROP TABLE webhook_endpoints;
