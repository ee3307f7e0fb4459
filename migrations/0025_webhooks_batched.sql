-- Up Migration

-- Webhooks (issue 12, part 5), off the hot path's per-row triggers. 0023 wrote the outbox from two
-- FOR EACH ROW triggers: one on every jobs status update, one on every ledger_accounts balance update.
-- Here the hot path's two batch functions (0018, 0019) write it themselves, once per batch, in the same
-- statement or transaction as the event, so the guarantee is unchanged (a message exists if and only if
-- its event committed), and the triggers go:
--   accept_jobs  credits.low: the batch's balance UPDATE returns each account's balance before and after,
--                and one INSERT ... SELECT joins the ns_available ones that crossed a threshold downwards.
--   settle_jobs  job.completed: one EXISTS probe of the live endpoints per batch, then one INSERT for the
--                batch's jobs whose namespace has an endpoint wanting it.
-- Their bodies are 0019's otherwise, unchanged. The other writers of these events, outside the batch
-- functions, write the same rows through the same payload functions (src/postgres/webhooks.repository.ts):
--   a job that ends without a result (failed, expired; src/jobs/settlement.service.ts endWithoutResult,
--   after its charge, so the message carries what was charged), and any other ledger posting that takes a
--   namespace's available credits down (src/postgres/ledger.repository.ts postTransactions: storage
--   charges, admin adjustments).
--
-- And the owner is told when an endpoint is disabled after persistent failure: namespace_notices, a
-- namespace's notices for its owner (the account API lists them), written in the statement that disables.
--
-- No Down section (as 0019): the previous bodies are 0019's and 0023's.

DROP TRIGGER jobs_webhook_events ON jobs;
DROP TRIGGER ledger_accounts_webhook_events ON ledger_accounts;
DROP FUNCTION webhook_job_event();
DROP FUNCTION webhook_credits_event();

-- The messages' bodies, one definition for every writer (same shape as 0023's triggers wrote).
CREATE FUNCTION webhook_job_payload(
  p_event text, p_job uuid, p_namespace uuid, p_model text, p_status text, p_charged bigint,
  p_prompt_tokens int, p_completion_tokens int, p_error_code text, p_error_message text
) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object(
    'type', p_event,
    'timestamp', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'data', jsonb_build_object(
      'job_id', p_job, 'namespace_id', p_namespace, 'model', p_model, 'status', p_status,
      'credits_charged', webhook_credits_text(coalesce(p_charged, 0)),
      'usage', CASE WHEN p_status = 'completed' THEN jsonb_build_object('prompt_tokens', p_prompt_tokens, 'completion_tokens', p_completion_tokens) END,
      'error', CASE WHEN p_status <> 'completed' THEN jsonb_build_object('code', p_error_code, 'message', p_error_message) END))
$$;

CREATE FUNCTION webhook_credits_low_payload(p_namespace uuid, p_available bigint, p_threshold bigint) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object(
    'type', 'credits.low',
    'timestamp', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'data', jsonb_build_object('namespace_id', p_namespace, 'available', webhook_credits_text(p_available), 'threshold', webhook_credits_text(p_threshold)))
$$;

-- What a namespace's owner should know and did not ask for: today an endpoint disabled after persistent
-- failure (kind webhook_endpoint_disabled, subject the endpoint's id). Listed by the account API.
CREATE TABLE namespace_notices (
  id            bigserial PRIMARY KEY,
  namespace_id  uuid NOT NULL REFERENCES namespaces(id),
  at            timestamptz NOT NULL DEFAULT now(),
  kind          text NOT NULL CHECK (kind IN ('webhook_endpoint_disabled')),
  subject       text NOT NULL,
  message       text NOT NULL,
  detail        jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX namespace_notices_namespace ON namespace_notices (namespace_id, at DESC, id DESC);

-- Holds (0019's accept_jobs; only its last statement changed: credits.low).
CREATE OR REPLACE FUNCTION accept_jobs(
  p_ids uuid[], p_created timestamptz[], p_namespaces uuid[], p_keys uuid[], p_models text[],
  p_max_attempts int[], p_max_tokens int[], p_prompt_bounds int[], p_holds bigint[],
  p_input_prices bigint[], p_output_prices bigint[], p_min_charges bigint[], p_deadlines timestamptz[],
  p_networks text[], p_regions text[], p_subclouds text[], p_priorities text[], p_surcharges int[],
  p_config_versions int[], p_timeouts int[], p_caps bigint[],
  p_idem_keys text[], p_idem_hashes bytea[], p_idem_window_hours int
) RETURNS TABLE (o_index int, o_outcome text, o_amount bigint)
LANGUAGE plpgsql AS $$
DECLARE
  n int := coalesce(cardinality(p_ids), 0);
  months date[];
  ns_list uuid[];
  balances bigint[];
  km_keys uuid[] := '{}';
  km_months date[] := '{}';
  km_spent bigint[] := '{}';
  live_idem text[];
  seen_idem text[] := '{}';
  outcomes text[] := array_fill(NULL::text, ARRAY[n]);
  amounts bigint[] := array_fill(NULL::bigint, ARRAY[n]);
  accepted int[] := '{}';
  claims int := 0;
  claimed int;
  i int;
  pos int;
  kpos int;
  spent bigint;
  idem text;
BEGIN
  IF n = 0 THEN RETURN; END IF;
  -- A job's spend month is the month of its creation time (its id's; see key-spend.repository.ts).
  SELECT array_agg(date_trunc('month', coalesce(c, now()) AT TIME ZONE 'UTC')::date ORDER BY o)
    INTO months FROM unnest(p_created) WITH ORDINALITY AS x(c, o);

  -- The namespaces' two accounts, created on first use (read first: ON CONFLICT on an existing row would
  -- wait for any open transaction that updated it), then locked in id order.
  INSERT INTO ledger_accounts (kind, owner_id)
  SELECT v.kind, s.ns FROM (SELECT DISTINCT unnest(p_namespaces) AS ns) s CROSS JOIN (VALUES ('ns_available'), ('ns_held')) AS v(kind)
   WHERE NOT EXISTS (SELECT 1 FROM ledger_accounts a WHERE a.kind = v.kind AND a.owner_id = s.ns)
  ON CONFLICT DO NOTHING;
  PERFORM 1 FROM ledger_accounts WHERE kind IN ('ns_available', 'ns_held') AND owner_id = ANY(p_namespaces) ORDER BY id FOR NO KEY UPDATE;
  SELECT array_agg(owner_id), array_agg(balance) INTO ns_list, balances
    FROM ledger_accounts WHERE kind = 'ns_available' AND owner_id = ANY(p_namespaces);

  -- Capped keys' monthly rows, locked (a key without a row has committed 0 so far).
  SELECT coalesce(array_agg(s.api_key_id), '{}'), coalesce(array_agg(s.month), '{}'), coalesce(array_agg(s.committed_micro), '{}')
    INTO km_keys, km_months, km_spent
    FROM (SELECT m.api_key_id, m.month, m.committed_micro FROM api_key_monthly_spend m
           WHERE (m.api_key_id, m.month) IN (SELECT x.k, x.m FROM unnest(p_keys, months, p_caps) AS x(k, m, cap) WHERE x.cap IS NOT NULL)
           ORDER BY m.api_key_id, m.month FOR UPDATE) s;

  -- Idempotency keys already in use within the window.
  SELECT coalesce(array_agg(k.namespace_id::text || ' ' || k.key), '{}') INTO live_idem FROM idempotency_keys k
   WHERE (k.namespace_id, k.key) IN (SELECT x.ns, x.key FROM unnest(p_namespaces, p_idem_keys) AS x(ns, key) WHERE x.key IS NOT NULL)
     AND k.created_at > now() - make_interval(hours => p_idem_window_hours);

  FOR i IN 1..n LOOP
    -- Refused past its deadline: no job may land in a day after the day's end plus the longest deadline
    -- (src/maintenance/history.service.ts closes days on that assumption).
    IF p_deadlines[i] <= now() THEN outcomes[i] := 'past_deadline'; CONTINUE; END IF;
    idem := CASE WHEN p_idem_keys[i] IS NULL THEN NULL ELSE p_namespaces[i]::text || ' ' || p_idem_keys[i] END;
    IF idem IS NOT NULL AND (idem = ANY(live_idem) OR idem = ANY(seen_idem)) THEN outcomes[i] := 'idempotency_key_in_use'; CONTINUE; END IF;
    pos := array_position(ns_list, p_namespaces[i]);
    -- Credits first, then the key's cap (the order the API has always answered in).
    IF balances[pos] < p_holds[i] THEN outcomes[i] := 'insufficient_credits'; amounts[i] := balances[pos]; CONTINUE; END IF;
    IF p_caps[i] IS NOT NULL THEN
      kpos := NULL;
      FOR j IN 1..coalesce(cardinality(km_keys), 0) LOOP
        IF km_keys[j] = p_keys[i] AND km_months[j] = months[i] THEN kpos := j; EXIT; END IF;
      END LOOP;
      spent := CASE WHEN kpos IS NULL THEN 0 ELSE km_spent[kpos] END;
      IF spent + p_holds[i] > p_caps[i] THEN outcomes[i] := 'monthly_cap_reached'; amounts[i] := greatest(0, p_caps[i] - spent); CONTINUE; END IF;
      IF kpos IS NULL THEN
        km_keys := km_keys || p_keys[i]; km_months := km_months || months[i]; km_spent := km_spent || (spent + p_holds[i]);
      ELSE
        km_spent[kpos] := spent + p_holds[i];
      END IF;
    END IF;
    balances[pos] := balances[pos] - p_holds[i];
    IF idem IS NOT NULL THEN seen_idem := seen_idem || idem; claims := claims + 1; END IF;
    outcomes[i] := 'accepted';
    accepted := accepted || i;
  END LOOP;

  IF cardinality(accepted) > 0 THEN
    INSERT INTO jobs (id, namespace_id, api_key_id, model, status, max_attempts, max_tokens, prompt_tokens_bound, hold_micro,
                      input_price_micro, output_price_micro, min_charge_micro, deadline_at, created_at, network, region, subcloud,
                      priority, surcharge_bps, config_version, attempt_timeout_ms)
    SELECT p_ids[a], p_namespaces[a], p_keys[a], p_models[a], 'queued', p_max_attempts[a], p_max_tokens[a], p_prompt_bounds[a], p_holds[a],
           p_input_prices[a], p_output_prices[a], p_min_charges[a], p_deadlines[a], coalesce(p_created[a], now()), p_networks[a], p_regions[a],
           p_subclouds[a], p_priorities[a], p_surcharges[a], p_config_versions[a], p_timeouts[a]
      FROM unnest(accepted) AS a;

    IF claims > 0 THEN
      INSERT INTO idempotency_keys (namespace_id, key, request_hash, job_id, job_created_at)
      SELECT p_namespaces[a], p_idem_keys[a], p_idem_hashes[a], p_ids[a], coalesce(p_created[a], now())
        FROM unnest(accepted) AS a WHERE p_idem_keys[a] IS NOT NULL
      ON CONFLICT (namespace_id, key) DO UPDATE
        SET request_hash = EXCLUDED.request_hash, job_id = EXCLUDED.job_id, job_created_at = EXCLUDED.job_created_at, created_at = now()
        WHERE idempotency_keys.created_at <= now() - make_interval(hours => p_idem_window_hours);
      GET DIAGNOSTICS claimed = ROW_COUNT;
      -- Another request took a key between the check above and this claim: only a rollback can undo this
      -- batch's job row, so the whole statement fails and the caller runs the items one by one.
      IF claimed < claims THEN
        RAISE EXCEPTION 'an idempotency key of this batch was claimed by a concurrent request' USING ERRCODE = 'RT409';
      END IF;
    END IF;

    -- One hold transaction per job with a non-zero hold: available -> held.
    WITH h AS (SELECT p_ids[a] AS job_id, p_namespaces[a] AS ns, p_holds[a] AS hold FROM unnest(accepted) AS a WHERE p_holds[a] > 0),
    t AS MATERIALIZED (SELECT h.*, nextval('ledger_transactions_id_seq') AS txn FROM h),
    txns AS (INSERT INTO ledger_transactions (id, kind, job_id) SELECT txn, 'hold', job_id FROM t),
    acc AS (SELECT owner_id, kind, id FROM ledger_accounts WHERE kind IN ('ns_available', 'ns_held') AND owner_id = ANY(p_namespaces)),
    e AS MATERIALIZED (
      SELECT t.txn, av.id AS account, -t.hold AS amount FROM t JOIN acc av ON av.owner_id = t.ns AND av.kind = 'ns_available'
      UNION ALL
      SELECT t.txn, hd.id, t.hold FROM t JOIN acc hd ON hd.owner_id = t.ns AND hd.kind = 'ns_held'
    ),
    entries AS (INSERT INTO ledger_entries (txn_id, account_id, amount) SELECT txn, account, amount FROM e),
    moved AS (
      UPDATE ledger_accounts la SET balance = la.balance + d.amount
        FROM (SELECT account, sum(amount) AS amount FROM e GROUP BY account) d
       WHERE la.id = d.account
      RETURNING la.owner_id, la.kind, la.balance - d.amount AS before, la.balance AS after
    )
    -- credits.low (was a per-row trigger on ledger_accounts, 0023): once per batch, for the namespaces
    -- whose available credits this batch took below an endpoint's threshold.
    INSERT INTO webhook_messages (id, endpoint_id, event_type, payload)
    SELECT webhook_message_id(), w.id, 'credits.low', webhook_credits_low_payload(m.owner_id, m.after, w.low_credits_threshold_micro)
      FROM moved m JOIN webhook_endpoints w ON w.namespace_id = m.owner_id AND w.disabled_at IS NULL AND 'credits.low' = ANY (w.events)
     WHERE m.kind = 'ns_available' AND m.before >= w.low_credits_threshold_micro AND m.after < w.low_credits_threshold_micro;

    INSERT INTO api_key_monthly_spend (api_key_id, month, committed_micro)
    SELECT p_keys[a], months[a], sum(p_holds[a]) FROM unnest(accepted) AS a GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (api_key_id, month) DO UPDATE SET committed_micro = api_key_monthly_spend.committed_micro + EXCLUDED.committed_micro;
  END IF;

  RETURN QUERY SELECT o::int, outcomes[o], amounts[o] FROM generate_series(1, n) AS o;
END $$;

-- Completions (0019's settle_jobs; changed: model_of, and job.completed at the end).
CREATE OR REPLACE FUNCTION settle_jobs(
  p_ids uuid[], p_created timestamptz[], p_attempts int[], p_nodes text[], p_prompt int[], p_completion int[],
  p_charged bigint[], p_operator_amounts bigint[], p_started timestamptz[], p_epoch bigint, p_points bigint
) RETURNS TABLE (o_index int, o_outcome text)
LANGUAGE plpgsql AS $$
DECLARE
  n int := coalesce(cardinality(p_ids), 0);
  outcomes text[] := array_fill('stale'::text, ARRAY[n]);
  ns_of uuid[] := array_fill(NULL::uuid, ARRAY[n]);
  key_of uuid[] := array_fill(NULL::uuid, ARRAY[n]);
  hold_of bigint[] := array_fill(NULL::bigint, ARRAY[n]);
  model_of text[] := array_fill(NULL::text, ARRAY[n]);
  claimed int[] := '{}';
  settled uuid[] := '{}';
  r record;
  created_from timestamptz;
  created_to timestamptz;
BEGIN
  IF n = 0 THEN RETURN; END IF;
  -- Scalar bounds on the partition key, so that the job statements touch only the batch's day partitions
  -- (an array element is not a value the planner can prune with; a scalar variable is).
  SELECT min(c), max(c) INTO created_from, created_to FROM unnest(p_created) AS c;
  -- Rows in id order (the lock order), each job's items in submission order.
  FOR r IN
    SELECT u.o, j.id, j.namespace_id, j.api_key_id, j.model, j.hold_micro, j.prompt_tokens_bound, j.max_tokens
      FROM jobs j
      JOIN generate_series(1, n) AS u(o) ON j.id = p_ids[u.o] AND j.created_at = p_created[u.o]
     WHERE j.finished_at IS NULL AND j.created_at BETWEEN created_from AND created_to
       AND ((j.status <> 'running' AND j.attempt < p_attempts[u.o]) OR (j.status = 'running' AND j.attempt = p_attempts[u.o] AND j.node_id = p_nodes[u.o]))
     ORDER BY j.id, u.o
       FOR UPDATE OF j
  LOOP
    IF r.id = ANY(settled) THEN CONTINUE; END IF; -- a second result for a job this batch settles: stale
    IF p_prompt[r.o] <= r.prompt_tokens_bound AND p_completion[r.o] <= r.max_tokens THEN
      settled := settled || r.id;
      claimed := claimed || r.o;
      ns_of[r.o] := r.namespace_id;
      key_of[r.o] := r.api_key_id;
      hold_of[r.o] := r.hold_micro;
      model_of[r.o] := r.model;
      outcomes[r.o] := 'completed';
    ELSE
      outcomes[r.o] := 'usage_out_of_bounds';
    END IF;
  END LOOP;

  IF cardinality(claimed) > 0 THEN
    UPDATE jobs j
       SET status = 'completed', attempt = p_attempts[c], node_id = p_nodes[c], prompt_tokens = p_prompt[c], completion_tokens = p_completion[c],
           charged_micro = p_charged[c], started_at = coalesce(j.started_at, p_started[c], now()), finished_at = now()
      FROM unnest(claimed) AS c
     WHERE j.id = p_ids[c] AND j.created_at = p_created[c] AND j.created_at BETWEEN created_from AND created_to;

    INSERT INTO job_attempts (job_id, job_created_at, attempt, node_id, started_at, ended_at, outcome)
    SELECT p_ids[c], p_created[c], p_attempts[c], p_nodes[c], coalesce(p_started[c], now()), now(), 'completed' FROM unnest(claimed) AS c
    ON CONFLICT (job_id, job_created_at, attempt) DO UPDATE SET outcome = 'completed', ended_at = now();

    INSERT INTO ledger_accounts (kind, owner_id)
    SELECT DISTINCT 'operator_earnings', nd.operator_account_id FROM unnest(claimed) AS c JOIN nodes nd ON nd.id = p_nodes[c]
     WHERE NOT EXISTS (SELECT 1 FROM ledger_accounts a WHERE a.kind = 'operator_earnings' AND a.owner_id = nd.operator_account_id)
    ON CONFLICT DO NOTHING;
    PERFORM 1 FROM ledger_accounts WHERE kind IN ('ns_available', 'ns_held') AND owner_id = ANY(ns_of) ORDER BY id FOR NO KEY UPDATE;

    WITH c AS (
      SELECT p_ids[x] AS job_id, ns_of[x] AS ns, hold_of[x] AS hold, p_charged[x] AS charged, p_operator_amounts[x] AS op, nd.operator_account_id AS operator
        FROM unnest(claimed) AS x JOIN nodes nd ON nd.id = p_nodes[x]
    ),
    acc AS (
      SELECT owner_id, kind, id FROM ledger_accounts
       WHERE (kind IN ('ns_available', 'ns_held') AND owner_id = ANY(ns_of))
          OR (kind = 'operator_earnings' AND owner_id IN (SELECT operator FROM c))
          OR kind = 'platform_revenue'
    ),
    lines AS MATERIALIZED (
      SELECT l.job_id, l.kind, l.account, l.amount, l.maintained FROM (
        SELECT c.job_id, 'release' AS kind, hd.id AS account, -(c.hold - c.charged) AS amount, true AS maintained
          FROM c JOIN acc hd ON hd.owner_id = c.ns AND hd.kind = 'ns_held'
        UNION ALL
        SELECT c.job_id, 'release', av.id, c.hold - c.charged, true FROM c JOIN acc av ON av.owner_id = c.ns AND av.kind = 'ns_available'
        UNION ALL
        SELECT c.job_id, 'capture', hd.id, -c.charged, true FROM c JOIN acc hd ON hd.owner_id = c.ns AND hd.kind = 'ns_held'
        UNION ALL
        SELECT c.job_id, 'capture', op.id, c.op, false FROM c JOIN acc op ON op.owner_id = c.operator AND op.kind = 'operator_earnings'
        UNION ALL
        SELECT c.job_id, 'capture', pf.id, c.charged - c.op, false FROM c JOIN acc pf ON pf.kind = 'platform_revenue'
      ) l WHERE l.amount <> 0
    ),
    t AS MATERIALIZED (
      SELECT d.job_id, d.kind, nextval('ledger_transactions_id_seq') AS txn FROM (SELECT DISTINCT job_id, kind FROM lines) d
    ),
    txns AS (INSERT INTO ledger_transactions (id, kind, job_id) SELECT txn, kind, job_id FROM t),
    entries AS (INSERT INTO ledger_entries (txn_id, account_id, amount) SELECT t.txn, lines.account, lines.amount FROM lines JOIN t USING (job_id, kind))
    UPDATE ledger_accounts la SET balance = la.balance + d.amount
      FROM (SELECT account, sum(amount) AS amount FROM lines WHERE maintained GROUP BY account) d
     WHERE la.id = d.account;

    UPDATE api_key_monthly_spend s SET committed_micro = s.committed_micro + d.delta
      FROM (SELECT key_of[c] AS key_id, date_trunc('month', p_created[c] AT TIME ZONE 'UTC')::date AS month, sum(p_charged[c] - hold_of[c]) AS delta
              FROM unnest(claimed) AS c GROUP BY 1, 2) d
     WHERE s.api_key_id = d.key_id AND s.month = d.month;

    INSERT INTO rcp_records (node_id, epoch, kind, points, job_id)
    SELECT p_nodes[c], p_epoch, 'job', p_points, p_ids[c] FROM unnest(claimed) AS c
    ON CONFLICT DO NOTHING;

    -- job.completed (was a per-row trigger on jobs, 0023): one probe of the live endpoints' index for the
    -- whole batch; rows only for the namespaces that have an endpoint wanting the event.
    IF EXISTS (SELECT 1 FROM webhook_endpoints WHERE namespace_id = ANY(ns_of) AND disabled_at IS NULL AND 'job.completed' = ANY (events)) THEN
      INSERT INTO webhook_messages (id, endpoint_id, event_type, payload)
      SELECT webhook_message_id(), w.id, 'job.completed',
             webhook_job_payload('job.completed', p_ids[c], ns_of[c], model_of[c], 'completed', p_charged[c], p_prompt[c], p_completion[c], NULL, NULL)
        FROM unnest(claimed) AS c
        JOIN webhook_endpoints w ON w.namespace_id = ns_of[c] AND w.disabled_at IS NULL AND 'job.completed' = ANY (w.events);
    END IF;
  END IF;

  RETURN QUERY SELECT o::int, outcomes[o] FROM generate_series(1, n) AS o;
END $$;
