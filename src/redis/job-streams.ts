// Streamed answers in transit, in Redis: the chunks of each attempt of a streamed job, from the io
// instance that holds the node's socket to whichever cloud instance holds the client's request.
//
// One Redis Stream per (job, attempt) rather than pub/sub: it keeps the chunks in order and lets a reader
// that comes late (its request reached another instance, or it was busy writing to a slow client) replay
// them from the start; pub/sub would lose whatever was published before it subscribed. Each stream is
// bounded (MAXLEN, and a byte budget checked on append) and expires a while after its last chunk, so an
// abandoned one costs nothing for long. Pub/sub is used only to wake readers up: a lost wake-up costs
// a poll interval, never a chunk. Losing Redis loses the streams in flight (see the gateway and relay for
// what that does to a job), never a result: the result and its output are stored from the signed result.
import { LuaScript, type RedisClient, type RedisKeys } from './client.js';
import { onMessage, subscribe, unsubscribe } from './pubsub.js';

/**
 * `stream_lost`: the stream holds fewer chunks than the writer appended (Redis lost them, or the stream
 * expired during a pause longer than its TTL); nothing can be checked against it any more.
 */
export type AppendOutcome = 'ok' | 'too_many_chunks' | 'too_large' | 'stream_lost';

export interface StreamEntry {
  /** The Redis Stream entry id, to read on after it. */
  id: string;
  delta: string;
}

/**
 * Appends chunks `seq`, `seq + 1`, ... to an attempt's stream, only if the stream still holds the `seq`
 * chunks before them (the writer, the one gateway session the attempt runs on, has checked the order
 * itself), each only while the stream stays within its chunk and byte budgets; then renews the stream's
 * expiry and wakes its readers once. Chunks that came together travel together: a fast node's burst of
 * tokens costs one round trip and one wake-up, not one per token.
 * Each entry holds the delta (`d`) and the stream's byte count up to and including it (`n`), so the
 * budget check reads only the last entry.
 * KEYS: the stream. ARGV: wake-up channel (a channel, not a key), seq, max chunks, max bytes, ttl ms, attempt, delta...
 * Returns [outcome, appended]: 'ok' when every delta was appended, else why the first refused one was
 * (the ones before it stay appended), and how many were.
 */
const APPEND = new LuaScript(`
local key, channel = KEYS[1], ARGV[1]
local seq, maxChunks, maxBytes = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local len = redis.call('XLEN', key)
if seq ~= len then return {'stream_lost', 0} end
local bytes = 0
if len > 0 then
  local last = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)
  bytes = tonumber(last[1][2][4])
end
local outcome, added = 'ok', 0
for i = 7, #ARGV do
  if len + added >= maxChunks then outcome = 'too_many_chunks' break end
  bytes = bytes + string.len(ARGV[i])
  if bytes > maxBytes then outcome = 'too_large' break end
  redis.call('XADD', key, 'MAXLEN', maxChunks, '*', 'd', ARGV[i], 'n', bytes)
  added = added + 1
end
if added > 0 then
  redis.call('PEXPIRE', key, ARGV[5])
  redis.call(PUBLISH, channel, ARGV[6])
end
return {outcome, added}
`);

export class JobStreams {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    /** How long an attempt's stream outlives its last chunk: long enough for its result to be checked and its readers to drain it. */
    private readonly ttlMs: () => number,
  ) {}

  /** Appends `deltas` as chunks `seq`, `seq + 1`, ... (see APPEND); `appended` of them were. */
  async append(
    jobId: string,
    attempt: number,
    seq: number,
    deltas: readonly string[],
    limits: { maxChunks: number; maxBytes: number },
  ): Promise<{ outcome: AppendOutcome; appended: number }> {
    const [outcome, appended] = (await APPEND.run(this.redis, [this.keys.jobStream(jobId, attempt)], [
      this.keys.jobStreamWakeups(jobId),
      seq,
      limits.maxChunks,
      limits.maxBytes,
      this.ttlMs(),
      attempt,
      ...deltas,
    ])) as [AppendOutcome, number];
    return { outcome, appended };
  }

  /** Up to `count` chunks after entry `afterId` (from the first when null). */
  async read(jobId: string, attempt: number, afterId: string | null, count: number): Promise<StreamEntry[]> {
    const rows = await this.redis.xrange(this.keys.jobStream(jobId, attempt), afterId === null ? '-' : `(${afterId}`, '+', 'COUNT', count);
    return rows.map(([id, fields]) => ({ id, delta: fields[1] ?? '' }));
  }

  /** Everything the attempt streamed, put together; null when it streamed nothing (or its stream expired). */
  async text(jobId: string, attempt: number): Promise<string | null> {
    const rows = await this.redis.xrange(this.keys.jobStream(jobId, attempt), '-', '+');
    if (rows.length === 0) return null;
    return rows.map(([, fields]) => fields[1] ?? '').join('');
  }
}

/** A reader's subscription to one job's wake-ups. */
export interface StreamWatch {
  /**
   * Resolves true at the next wake-up (at once if one came since the last wait), false after `timeoutMs`
   * or on abort.
   */
  wait(timeoutMs: number, signal?: AbortSignal): Promise<boolean>;
  /** Wakes a pending wait now (the reader has another reason to look again). */
  poke(): void;
  close(): Promise<void>;
}

interface WatchState {
  pending: boolean;
  wake: ((woken: boolean) => void) | null;
}

/**
 * Wake-ups for the readers on this instance: one subscriber connection (a connection in subscribe mode
 * can run nothing else), a channel per job subscribed while at least one reader follows that job.
 */
export class StreamWakeups {
  private readonly watchers = new Map<string, Set<WatchState>>();

  constructor(
    private readonly sub: RedisClient,
    private readonly keys: RedisKeys,
  ) {
    onMessage(sub, (channel) => {
      for (const w of this.watchers.get(channel) ?? []) signal(w);
    });
  }

  async watch(jobId: string): Promise<StreamWatch> {
    const channel = this.keys.jobStreamWakeups(jobId);
    const state: WatchState = { pending: false, wake: null };
    let set = this.watchers.get(channel);
    if (!set) {
      this.watchers.set(channel, (set = new Set()));
      await subscribe(this.sub, channel);
    }
    set.add(state);
    let closed = false;
    return {
      wait: (timeoutMs, abort) =>
        new Promise<boolean>((resolve) => {
          if (state.pending || abort?.aborted) {
            const woken = state.pending;
            state.pending = false;
            return resolve(woken);
          }
          const done = (woken: boolean) => {
            clearTimeout(timer);
            abort?.removeEventListener('abort', onAbort);
            state.wake = null;
            state.pending = false;
            resolve(woken);
          };
          const onAbort = () => done(false);
          const timer = setTimeout(onAbort, timeoutMs);
          abort?.addEventListener('abort', onAbort, { once: true });
          state.wake = done;
        }),
      poke: () => signal(state),
      close: async () => {
        if (closed) return;
        closed = true;
        const current = this.watchers.get(channel);
        current?.delete(state);
        if (current && current.size === 0) {
          this.watchers.delete(channel);
          await unsubscribe(this.sub, channel);
        }
      },
    };
  }
}

function signal(w: WatchState): void {
  if (w.wake) w.wake(true);
  else w.pending = true;
}
