-- Up Migration

-- Priority classes (src/domain/priority.ts). A model may charge a surcharge per class, in basis points of
-- the charge (negative: a discount), as a JSON object such as {"urgent": 5000, "bulk": -2000}; a class
-- it does not name costs the base price. The job keeps the class it was accepted in and the surcharge it
-- was priced with, as it keeps its token prices, so a later repricing never changes an accepted job.
ALTER TABLE models ADD COLUMN priority_surcharge_bps jsonb NOT NULL DEFAULT '{}'::jsonb
  CHECK (jsonb_typeof(priority_surcharge_bps) = 'object');
ALTER TABLE jobs ADD COLUMN priority text NOT NULL DEFAULT 'standard'
  CHECK (priority IN ('urgent', 'standard', 'bulk', 'test'));
ALTER TABLE jobs ADD COLUMN surcharge_bps integer NOT NULL DEFAULT 0 CHECK (surcharge_bps BETWEEN -9999 AND 100000);

-- Down Migration
ALTER TABLE jobs DROP COLUMN surcharge_bps;
ALTER TABLE jobs DROP COLUMN priority;
ALTER TABLE models DROP COLUMN priority_surcharge_bps;
