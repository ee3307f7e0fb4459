-- Up Migration

-- API keys: an optional expiry, an optional credit cap per calendar month (UTC), and when last used
-- (updated at most once a minute per key).
ALTER TABLE api_keys
  ADD COLUMN expires_at         timestamptz,
  ADD COLUMN monthly_cap_micro  bigint CHECK (monthly_cap_micro >= 0),
  ADD COLUMN last_used_at       timestamptz;

-- Credits a key has committed in a month: its jobs' outstanding holds plus their captured charges.
-- Kept in the same transactions as the holds and settlements, so a cap holds at any concurrency and
-- across instances (the row lock serializes one key's accepts). `month` is the job's creation month.
CREATE TABLE api_key_monthly_spend (
  api_key_id       uuid NOT NULL REFERENCES api_keys(id),
  month            date NOT NULL,
  committed_micro  bigint NOT NULL DEFAULT 0 CHECK (committed_micro >= 0),
  PRIMARY KEY (api_key_id, month)
);

-- Down Migration
DROP TABLE api_key_monthly_spend;
ALTER TABLE api_keys DROP COLUMN expires_at, DROP COLUMN monthly_cap_micro, DROP COLUMN last_used_at;
