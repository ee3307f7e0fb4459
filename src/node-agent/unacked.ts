// Results written to the socket but not yet acknowledged by the gateway (result_ack). A write that
// "succeeded" only reached the local kernel: if the connection then drops, the gateway may never have read
// it, so those results are re-sent over HTTP. Finalization is idempotent and fenced by attempt on the
// gateway, so a duplicate is harmless, and a lost result is paid work thrown away.
import type { ResultMessage } from '../domain/protocol.js';

const LIMIT = 10_000;

interface Entry {
  message: ResultMessage;
  deadline: number;
}

export class UnackedResults {
  private readonly entries = new Map<string, Entry>();

  add(message: ResultMessage, deadline: number): void {
    // Cheap, partial prune from the oldest end (insertion order roughly follows deadlines).
    const now = Date.now();
    for (const [k, e] of this.entries) {
      if (e.deadline > now) break;
      this.entries.delete(k);
    }
    this.entries.set(key(message.jobId, message.attempt), { message, deadline });
    if (this.entries.size > LIMIT) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
  }

  ack(jobId: string, attempt: number): void {
    this.entries.delete(key(jobId, attempt));
  }

  /** Removes and returns every entry whose deadline has not passed (later ones would be refused anyway). */
  takeAll(): Entry[] {
    const now = Date.now();
    const live = [...this.entries.values()].filter((e) => e.deadline > now);
    this.entries.clear();
    return live;
  }
}

function key(jobId: string, attempt: number): string {
  return `${jobId}#${attempt}`;
}
