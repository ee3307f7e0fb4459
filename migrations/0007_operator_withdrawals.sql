-- Up Migration

-- Operator withdrawals: a request moves credits from the operator's earnings to a pending-withdrawal
-- account (a ledger hold), and is exported for settlement, which happens outside the backbone. Paying it
-- out (or cancelling it) is recorded back here by the platform.
ALTER TABLE ledger_accounts DROP CONSTRAINT ledger_accounts_kind_check;
ALTER TABLE ledger_accounts ADD CONSTRAINT ledger_accounts_kind_check
  CHECK (kind IN ('funding', 'ns_available', 'ns_held', 'operator_earnings', 'operator_withdrawal', 'platform_revenue'));
ALTER TABLE ledger_transactions DROP CONSTRAINT ledger_transactions_kind_check;
ALTER TABLE ledger_transactions ADD CONSTRAINT ledger_transactions_kind_check
  CHECK (kind IN ('topup', 'hold', 'capture', 'release', 'withdrawal'));
ALTER TABLE ledger_transactions DROP CONSTRAINT ledger_transactions_check;
ALTER TABLE ledger_transactions ADD CONSTRAINT ledger_transactions_job_check
  CHECK ((kind IN ('topup', 'withdrawal')) = (job_id IS NULL));

CREATE TABLE withdrawals (
  id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  operator_account_id  uuid NOT NULL REFERENCES accounts(id),
  amount_micro         bigint NOT NULL CHECK (amount_micro > 0),
  destination          text NOT NULL CHECK (length(destination) BETWEEN 1 AND 200),
  status               text NOT NULL DEFAULT 'requested' CHECK (status IN ('requested', 'exported')),
  ledger_txn_id        bigint NOT NULL REFERENCES ledger_transactions(id),
  created_at           timestamptz NOT NULL DEFAULT now(),
  exported_at          timestamptz
);
CREATE INDEX withdrawals_requested ON withdrawals (created_at) WHERE status = 'requested';
CREATE INDEX withdrawals_operator ON withdrawals (operator_account_id, created_at);

-- Down Migration
DROP TABLE withdrawals;
ALTER TABLE ledger_transactions DROP CONSTRAINT ledger_transactions_job_check;
ALTER TABLE ledger_transactions ADD CONSTRAINT ledger_transactions_check CHECK ((kind = 'topup') = (job_id IS NULL));
ALTER TABLE ledger_transactions DROP CONSTRAINT ledger_transactions_kind_check;
ALTER TABLE ledger_transactions ADD CONSTRAINT ledger_transactions_kind_check CHECK (kind IN ('topup', 'hold', 'capture', 'release'));
ALTER TABLE ledger_accounts DROP CONSTRAINT ledger_accounts_kind_check;
ALTER TABLE ledger_accounts ADD CONSTRAINT ledger_accounts_kind_check
  CHECK (kind IN ('funding', 'ns_available', 'ns_held', 'operator_earnings', 'platform_revenue'));
