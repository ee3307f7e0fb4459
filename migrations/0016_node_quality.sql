-- Up Migration

-- Blind jobs (src/network/quality.service.ts): the network runs prompts with known answers on nodes as
-- ordinary jobs of its own namespace, so a node cannot tell them from consumer work, and checks the
-- answers. A probe names what the right answer is: the SHA-256 of the exact content (a fingerprint,
-- for deterministic requests: temperature 0 and a fixed seed) and/or a text the right answer contains.
CREATE TABLE blind_probes (
  id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  model              text NOT NULL REFERENCES models(name),
  request            jsonb NOT NULL,
  expected_sha256    text CHECK (expected_sha256 ~ '^[0-9a-f]{64}$'),
  expected_contains  text CHECK (length(expected_contains) BETWEEN 1 AND 2000),
  active             boolean NOT NULL DEFAULT true,
  created_at         timestamptz NOT NULL DEFAULT now(),
  CHECK (expected_sha256 IS NOT NULL OR expected_contains IS NOT NULL)
);
CREATE INDEX blind_probes_active ON blind_probes (model) WHERE active;

-- One row per blind job; the job itself is an ordinary row of `jobs` in the network's own namespace. No
-- foreign key to jobs: the jobs table is partitioned by day and dropped past its live window, while these
-- verdicts are kept for the node's record.
CREATE TABLE blind_jobs (
  job_id        uuid PRIMARY KEY,
  probe_id      uuid NOT NULL REFERENCES blind_probes(id),
  created_at    timestamptz NOT NULL DEFAULT now(),
  node_id       text REFERENCES nodes(id),
  passed        boolean,
  evaluated_at  timestamptz,
  detail        text
);
CREATE INDEX blind_jobs_unevaluated ON blind_jobs (created_at) WHERE evaluated_at IS NULL;
CREATE INDEX blind_jobs_by_node ON blind_jobs (node_id, evaluated_at DESC) WHERE evaluated_at IS NOT NULL;

-- Each node's current score and its parts (src/domain/scores.ts); mirrored to Redis, where reservations
-- read it to weight the choice of node.
CREATE TABLE node_scores (
  node_id         text PRIMARY KEY REFERENCES nodes(id),
  score           double precision NOT NULL CHECK (score >= 0 AND score <= 1),
  success_rate    double precision NOT NULL,
  latency_factor  double precision NOT NULL,
  blind_accuracy  double precision NOT NULL,
  attempts        integer NOT NULL,
  blind_jobs      integer NOT NULL,
  updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Principals the network itself acts as (the namespace and key that blind jobs run under).
CREATE TABLE system_principals (
  purpose       text PRIMARY KEY,
  namespace_id  uuid NOT NULL REFERENCES namespaces(id),
  api_key_id    uuid NOT NULL REFERENCES api_keys(id)
);

-- Down Migration
DROP TABLE system_principals, node_scores, blind_jobs, blind_probes;
