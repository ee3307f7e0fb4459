// In-memory JobLogsStore, job log and node stats (space/job-logs.service.ts) for the service's fast tests.
import type { NodeStatsDoc } from '../../src/domain/node-stats.js';
import type { StoredJobLogEntry } from '../../src/mongo/job-logs.repository.js';
import type { JobLogsPort, JobLogsStore, NodeStatsPort } from '../../src/space/job-logs.service.js';

export class FakeJobLogsStore implements JobLogsStore {
  /** job id -> its namespace */
  readonly jobs = new Map<string, string>();
  /** `${operator account}/${node id}` */
  readonly operatorNodes = new Set<string>();
  readonly calls: string[] = [];

  findJob(jobId: string): Promise<object | null> {
    this.calls.push('findJob');
    return Promise.resolve(this.jobs.has(jobId) ? { id: jobId } : null);
  }

  findJobInNamespace(jobId: string, namespaceId: string): Promise<object | null> {
    this.calls.push('findJobInNamespace');
    return Promise.resolve(this.jobs.get(jobId) === namespaceId ? { id: jobId } : null);
  }

  findOperatorNode(accountId: string, nodeId: string): Promise<object | null> {
    this.calls.push('findOperatorNode');
    return Promise.resolve(this.operatorNodes.has(`${accountId}/${nodeId}`) ? { id: nodeId } : null);
  }
}

/** Job log entries as stored (in order), and nodes' stats windows. */
export class FakeJobLogs implements JobLogsPort, NodeStatsPort {
  readonly entries: StoredJobLogEntry[] = [];
  readonly windows: NodeStatsDoc[] = [];

  ofJob(jobId: string): Promise<StoredJobLogEntry[]> {
    return Promise.resolve(this.entries.filter((e) => e.jobId === jobId));
  }

  windowsOf(nodeId: string | null, since: Date, until: Date, limit: number): Promise<{ windows: NodeStatsDoc[]; truncated: boolean }> {
    const all = this.windows.filter((w) => (nodeId === null || w.nodeId === nodeId) && w.windowStart >= since && w.windowStart < until);
    return Promise.resolve({ windows: all.slice(0, limit), truncated: all.length > limit });
  }
}
