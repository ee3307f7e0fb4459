-- Up Migration

-- Snapshots (src/snapshots/): CAR files of IPLD blocks, each rooted in a signed manifest, chained by the
-- previous snapshot's root CID. The archive itself lives in the configured store (a local directory or
-- IPFS); this table is the index: which snapshots exist, what they cover, and when the copy in the store
-- was last read back and verified (a day's raw partitions are dropped only after that).
CREATE TABLE snapshots (
  cid           text PRIMARY KEY CHECK (cid ~ '^b[a-z2-7]+$'),
  -- Position in the chain: 1 for the first snapshot; the previous one has seq - 1.
  seq           integer NOT NULL UNIQUE CHECK (seq >= 1),
  previous_cid  text REFERENCES snapshots(cid),
  -- 'day': one closed UTC day of history; 'state': a frozen state taken on demand (before an upgrade).
  kind          text NOT NULL CHECK (kind IN ('day', 'state')),
  day           date,
  bytes         bigint NOT NULL CHECK (bytes > 0),
  -- Part name -> rows, as the manifest says (for listings without fetching the archive).
  part_rows     jsonb NOT NULL,
  -- Where the archive was written ('local:<dir>', 'kubo:<url>').
  store         text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  verified_at   timestamptz,
  CHECK ((kind = 'day') = (day IS NOT NULL)),
  CHECK ((seq = 1) = (previous_cid IS NULL))
);
CREATE UNIQUE INDEX snapshots_day ON snapshots (day) WHERE kind = 'day';

-- Contribution epochs sealed in a snapshot: the Merkle root over (node, points) that on-chain claims
-- check proofs against (src/snapshots/epoch-merkle.ts), and the snapshot that carries the epoch's records.
CREATE TABLE snapshot_epochs (
  epoch         bigint PRIMARY KEY CHECK (epoch >= 0),
  merkle_root   text NOT NULL CHECK (merkle_root ~ '^0x[0-9a-f]{64}$'),
  nodes         integer NOT NULL CHECK (nodes >= 0),
  points        bigint NOT NULL CHECK (points >= 0),
  snapshot_cid  text NOT NULL REFERENCES snapshots(cid)
);

-- Down Migration
DROP TABLE snapshot_epochs, snapshots;
