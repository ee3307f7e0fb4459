-- Up Migration

-- Eligibility (issue 4, part 2): which nodes may run which jobs. The rules live here; Redis holds a
-- mirror that every reservation checks (src/redis/eligibility.repository.ts), rebuilt from these tables.

-- Each model's current version, the sha256 of its weights (informational: published in the network
-- config) and the least GPU memory (MiB) a node needs to be given it. A node serves the model only at
-- the current version.
ALTER TABLE models
  ADD COLUMN version text NOT NULL DEFAULT '1' CHECK (version ~ '^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$'),
  ADD COLUMN content_hash text CHECK (content_hash ~ '^[0-9a-f]{64}$'),
  ADD COLUMN min_gpu_memory_mb integer NOT NULL DEFAULT 0 CHECK (min_gpu_memory_mb >= 0);

-- Subclouds: named node groups with their own policy. A subcloud serves one network; `allowed_models`
-- empty means every model; its members need at least `min_gpu_memory_mb` (beside each model's own
-- floor); `isolate`: its members serve only its jobs.
CREATE TABLE subclouds (
  name               text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
  network            text NOT NULL CHECK (network IN ('mainnet', 'testnet')),
  allowed_models     text[] NOT NULL DEFAULT '{}',
  min_gpu_memory_mb  integer NOT NULL DEFAULT 0 CHECK (min_gpu_memory_mb >= 0),
  isolate            boolean NOT NULL DEFAULT false,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE subcloud_members (
  subcloud  text NOT NULL REFERENCES subclouds(name) ON DELETE CASCADE,
  node_id   text NOT NULL REFERENCES nodes(id),
  added_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (subcloud, node_id)
);
CREATE INDEX subcloud_members_node ON subcloud_members (node_id);

-- A namespace's jobs run on its network's nodes only, and, when it is bound to a subcloud, on that
-- subcloud's members only. A subcloud with namespaces bound to it cannot be deleted (unbind them first).
ALTER TABLE namespaces
  ADD COLUMN network text NOT NULL DEFAULT 'mainnet' CHECK (network IN ('mainnet', 'testnet')),
  ADD COLUMN subcloud text REFERENCES subclouds(name);

-- A job's placement, fixed when it is accepted: its namespace's network and subcloud at that moment
-- (the subcloud by name, kept as history even if the subcloud is deleted later) and the region its
-- consumer asked for.
ALTER TABLE jobs
  ADD COLUMN network text NOT NULL DEFAULT 'mainnet' CHECK (network IN ('mainnet', 'testnet')),
  ADD COLUMN region text CHECK (region ~ '^[a-z][a-z0-9-]{1,31}$'),
  ADD COLUMN subcloud text;

-- One counter, bumped in the transaction of every change to the rules above (models' version and floor,
-- subclouds, members), so that the Redis mirror can tell an older snapshot from a newer one. `database`
-- names this database's series of revisions: a mirror left in Redis by another database (recreated, or
-- restored from a snapshot) is replaced whatever its counter says.
CREATE TABLE eligibility_revision (
  id        boolean PRIMARY KEY DEFAULT true CHECK (id),
  database  uuid NOT NULL DEFAULT gen_random_uuid(),
  revision  bigint NOT NULL
);
INSERT INTO eligibility_revision (revision) VALUES (1);

-- Down Migration
DROP TABLE eligibility_revision;
ALTER TABLE jobs DROP COLUMN subcloud, DROP COLUMN region, DROP COLUMN network;
ALTER TABLE namespaces DROP COLUMN subcloud, DROP COLUMN network;
DROP TABLE subcloud_members, subclouds;
ALTER TABLE models DROP COLUMN min_gpu_memory_mb, DROP COLUMN content_hash, DROP COLUMN version;
