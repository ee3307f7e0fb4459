// A streamed job's text on its way to the gateway: numbers the pieces the runtime produces and sends each
// as a `job_chunk` (unsigned: see protocol.ts for how the stream is authenticated), within the limits the
// gateway enforces (domain/streaming.ts), and remembers the whole text for the final result, which must
// equal it.
import type { JobChunkMessage, JobDispatch } from '../domain/protocol.js';
import { STREAM_MAX_DELTA_CHARS, streamMaxChunks } from '../domain/streaming.js';

export class ChunkStream {
  private seq = 0;
  private sent = '';
  /** Text held back once the chunk budget is nearly spent; it goes out as the last chunk. */
  private held = '';
  private readonly maxChunks: number;

  constructor(
    private readonly job: Pick<JobDispatch, 'jobId' | 'attempt' | 'request'>,
    private readonly nodeId: string,
    /** Sends one chunk (over the socket; dropped when it is down, which fails the attempt anyway). */
    private readonly send: (chunk: JobChunkMessage) => void,
  ) {
    this.maxChunks = streamMaxChunks(job.request.max_tokens);
  }

  /** Everything pushed so far, sent or held. */
  get text(): string {
    return this.sent + this.held;
  }

  /** True once any text was pushed: a runtime that ignores streaming pushes none. */
  get started(): boolean {
    return this.text !== '';
  }

  push(delta: string): void {
    if (delta === '') return;
    // A runtime that emits more pieces than tokens would exhaust the budget: the last chunk carries the rest.
    if (this.held !== '' || this.seq >= this.maxChunks - 1) this.held += delta;
    else this.emit(delta);
  }

  /** Sends what was held back. Call once the runtime has finished, before the result goes out. */
  finish(): void {
    const rest = this.held;
    this.held = '';
    if (rest !== '') this.emit(rest);
  }

  private emit(text: string): void {
    for (const piece of pieces(text)) {
      this.send({ type: 'job_chunk', nodeId: this.nodeId, jobId: this.job.jobId, attempt: this.job.attempt, seq: this.seq++, delta: piece });
      this.sent += piece;
    }
  }
}

/** `text` cut into pieces of at most STREAM_MAX_DELTA_CHARS, never between the two halves of a surrogate pair. */
function pieces(text: string): string[] {
  const out: string[] = [];
  let from = 0;
  while (from < text.length) {
    let to = Math.min(text.length, from + STREAM_MAX_DELTA_CHARS);
    const last = text.charCodeAt(to - 1);
    if (to < text.length && last >= 0xd800 && last <= 0xdbff) to--;
    out.push(text.slice(from, to));
    from = to;
  }
  return out;
}
