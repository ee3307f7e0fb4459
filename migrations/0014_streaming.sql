-- Up Migration

-- Streaming (stream: true): the attempt whose tokens have started reaching the client. Set once, by the
-- cloud instance relaying the stream, just before it forwards that attempt's first chunk, and only while
-- that attempt is the job's running one. From then on the job is never retried on another node (the
-- client would receive two different answers run together): if that attempt fails, the job fails and its
-- hold is released (src/postgres/job-streams.repository.ts, src/scheduler/scheduler.service.ts).
ALTER TABLE jobs ADD COLUMN streamed_attempt integer CHECK (streamed_attempt > 0);

-- Down Migration
ALTER TABLE jobs DROP COLUMN streamed_attempt;
