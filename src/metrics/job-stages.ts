// Where a job's time goes: one histogram, `resultity_job_stage_seconds{stage}`, observed by whichever
// process does each stage. Together the stages cover a synchronous job from the request to its answer,
// except the network hops between processes and the HTTP request and reply themselves, so that a slow
// job (or a benchmark's latency) can be read stage by stage:
//   cloud       accept_checks  key, request, catalogue and "any node online" checks, until the hold is asked for
//               accept_commit  the hold: the job row, its ledger hold and spend (PostgreSQL, one statement)
//               publish        the confirmed publish of its ticket (RabbitMQ)
//   scheduler   queued         from the job's creation (the time its id carries) to the scheduler's receipt;
//                              it contains accept_commit and publish, and the broker's own time
//               place          the wait for a node and its reservation (Redis)
//               dispatch       signing the dispatch and handing it to the node's io instance (Redis)
//   io          node           from the dispatch to the node's result at its gateway: the node's work and
//                              the two hops to and from it
//               verify         the result's signature
//               store_result   its output written to MongoDB
//               settle         the settlement (PostgreSQL, one statement)
//               complete       the node's slot returned and the job's 'finished' event (Redis, one script)
//   cloud       stream_commit  streamed jobs only: recording the attempt whose tokens the client reads, before
//                              its first token is forwarded (PostgreSQL, one statement: the retry fence)
// Stages measured across processes (queued, node) use the wall clock of one machine's processes; the
// others, the monotonic clock of the process that observes them. The label set is this fixed list.
import { Histogram } from 'prom-client';
import { metricsRegistry } from './engine-metrics.js';

export const JOB_STAGES = ['accept_checks', 'accept_commit', 'publish', 'queued', 'place', 'dispatch', 'node', 'verify', 'store_result', 'settle', 'complete', 'stream_commit'] as const;
export type JobStage = (typeof JOB_STAGES)[number];

export const JOB_STAGE_METRIC = 'resultity_job_stage_seconds';

const jobStageSeconds = new Histogram({
  name: JOB_STAGE_METRIC,
  help: 'Time spent in each stage of a job, by the process that runs the stage',
  labelNames: ['stage'] as const,
  buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  registers: [metricsRegistry],
});

/**
 * A stopwatch for stages of one process: `lap(stage)` records the time since the last lap (or the start)
 * and returns it in ms (for the job's log, domain/job-log.ts).
 */
export function stageTimer(): { lap(stage: JobStage): number } {
  let last = performance.now();
  return {
    lap(stage) {
      const now = performance.now();
      const ms = now - last;
      jobStageSeconds.observe({ stage }, ms / 1000);
      last = now;
      return ms;
    },
  };
}

/** Records a stage that began at `sinceEpochMs` (a wall-clock time, possibly another process's) and ends now; returns it in ms. */
export function stageSince(stage: JobStage, sinceEpochMs: number): number {
  const ms = Math.max(0, Date.now() - sinceEpochMs);
  jobStageSeconds.observe({ stage }, ms / 1000);
  return ms;
}
