-- Up Migration

-- A minimum charge per request (micro-credits), for models whose cost is not all in their tokens. The
-- job keeps the minimum it was accepted under, as it keeps its token prices.
ALTER TABLE models ADD COLUMN min_charge_micro bigint NOT NULL DEFAULT 0 CHECK (min_charge_micro >= 0);
ALTER TABLE jobs ADD COLUMN min_charge_micro bigint NOT NULL DEFAULT 0 CHECK (min_charge_micro >= 0);

-- Down Migration
ALTER TABLE jobs DROP COLUMN min_charge_micro;
ALTER TABLE models DROP COLUMN min_charge_micro;
