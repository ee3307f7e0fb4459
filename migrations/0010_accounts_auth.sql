-- Up Migration

-- How an account signs in: an email with a password (scrypt, in the self-describing form written by
-- src/domain/passwords.ts), or an Ethereum wallet (Sign-In with Ethereum), or neither (accounts the
-- platform created through the admin API). Emails are stored normalised (trimmed, lower case) and unique
-- case-insensitively; wallet addresses in lower case, like node ids.
ALTER TABLE accounts
  ADD COLUMN email           text CHECK (length(email) BETWEEN 3 AND 254),
  ADD COLUMN password_hash   text,
  ADD COLUMN wallet_address  text CHECK (wallet_address ~ '^0x[0-9a-f]{40}$'),
  ADD CONSTRAINT accounts_password_with_email CHECK ((email IS NULL) = (password_hash IS NULL));
CREATE UNIQUE INDEX accounts_email_unique ON accounts (lower(email));
CREATE UNIQUE INDEX accounts_wallet_unique ON accounts (wallet_address);

-- Sessions of the account API: the token is shown once and kept only as its SHA-256. Expired and revoked
-- rows are pruned per account when it signs in again (src/postgres/sessions.repository.ts).
CREATE TABLE account_sessions (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  account_id  uuid NOT NULL REFERENCES accounts(id),
  token_hash  bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
  method      text NOT NULL CHECK (method IN ('password', 'siwe')),
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL,
  revoked_at  timestamptz,
  CHECK (expires_at > created_at)
);
CREATE INDEX account_sessions_account ON account_sessions (account_id);

-- Namespaces are soft-deleted: jobs, API keys and the append-only ledger (whose namespace accounts are
-- owned by the namespace id) keep referring to a deleted namespace, so its row must stay for history and
-- audit. A deleted namespace's name is free for a new one, hence uniqueness among live namespaces only.
ALTER TABLE namespaces ADD COLUMN deleted_at timestamptz;
ALTER TABLE namespaces DROP CONSTRAINT namespaces_account_id_name_key;
CREATE UNIQUE INDEX namespaces_account_name_live ON namespaces (account_id, name) WHERE deleted_at IS NULL;

-- Down Migration
DROP INDEX namespaces_account_name_live;
ALTER TABLE namespaces ADD CONSTRAINT namespaces_account_id_name_key UNIQUE (account_id, name);
ALTER TABLE namespaces DROP COLUMN deleted_at;
DROP TABLE account_sessions;
DROP INDEX accounts_wallet_unique, accounts_email_unique;
ALTER TABLE accounts DROP CONSTRAINT accounts_password_with_email, DROP COLUMN email, DROP COLUMN password_hash, DROP COLUMN wallet_address;
