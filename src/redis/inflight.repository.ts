// A job's in-flight record in Redis: which attempt runs, on which node, since when. It is live state: the
// attempt's start costs no PostgreSQL transaction (the reservation script writes it, presence.repository.ts
// RESERVE), and its end is written to PostgreSQL only when it settles or fails (jobs.attempt fences
// attempts that ended; migrations/0018). Losing it loses nothing: a redelivered job's scheduler reads the
// job's row and starts the next attempt; a result of an attempt whose record was lost still settles if
// that attempt has not ended in PostgreSQL.
//
// Key layout: <p>job:<jobId>  hash  attempt, node, instance, started (ms), done ('1' once the job ended)
//   TTL: the job's deadline (set at the claim); 60 s once done (duplicate messages then meet 'done').
//
// The scripts here end an attempt's Redis side in one round trip each: the node's slot, the record, the
// node's failure streak and the job event every instance hears.
import { LuaScript, type RedisKeys, type RedisClient } from './client.js';
import { READINESS_LUA } from './readiness.lua.js';
import type { JobEvent } from './job-events.js';
import { USAGE_SAMPLE_TTL_MS } from './usage-samples.repository.js';

/** How long a finished job's record stays, so that a late duplicate message finds it done. */
const DONE_TTL_MS = 60_000;

/**
 * A job completed on a node: counts it toward the slots the node has earned (readiness.lua.ts
 * node-earned), returns the node's slot, marks the job done, ends the node's failure streak, adds the node's claimed tokens and delivered bytes to its usage sample on the model
 * (usage-samples.repository.ts) and publishes the job's event.
 * KEYS: node-earned, the node's presence, its slots, the job's record, the node's failure streak, the model's
 * usage sample. ARGV: live prefix, nodeId, jobId, event (JSON), done TTL (ms), model, claimed completion tokens, output bytes,
 * usage sample TTL (ms).
 */
const COMPLETED = new LuaScript(`${READINESS_LUA}
local p, id, job, event, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
if tonumber(ARGV[8]) > 0 then
  local uk = KEYS[6]
  redis.call('HINCRBY', uk, id .. '|t', ARGV[7])
  redis.call('HINCRBY', uk, id .. '|b', ARGV[8])
  redis.call('PEXPIRE', uk, ARGV[9])
end
redis.call('HINCRBY', KEYS[1], id, 1)
local nk = KEYS[2]
if redis.call('ZREM', KEYS[3], job) == 1 and redis.call('EXISTS', nk) == 1 then rescore(p, id, nk, true, KEYS[1]) end
local jk = KEYS[4]
redis.call('HSET', jk, 'done', '1')
redis.call('PEXPIRE', jk, ttl)
redis.call('DEL', KEYS[5])
redis.call(PUBLISH, p .. 'events:jobs', event)
return 1
`);

/**
 * A job ended without a result (failed, expired, cancelled): returns the slot of the attempt still in
 * flight, if any, marks the job done and publishes the job's event. Returns the node whose slot was
 * returned, or false.
 * KEYS: the job's record, node-earned. ARGV: live prefix, jobId, event (JSON), done TTL (ms). The node's keys
 * are learnt from the record, so they cannot be declared: built from the live prefix, the same slot.
 */
const ENDED = new LuaScript(`${READINESS_LUA}
local p, job, event, ttl = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local jk = KEYS[1]
local f = redis.call('HMGET', jk, 'node', 'done')
local released = false
if f[1] and f[2] ~= '1' then
  local nk = p .. 'node:' .. f[1]
  if redis.call('ZREM', nk .. ':slots', job) == 1 then
    released = f[1]
    if redis.call('EXISTS', nk) == 1 then rescore(p, f[1], nk, true, KEYS[2]) end
  end
end
redis.call('HSET', jk, 'done', '1')
redis.call('PEXPIRE', jk, ttl)
redis.call(PUBLISH, p .. 'events:jobs', event)
return released
`);

export interface InflightAttempt {
  attempt: number;
  nodeId: string;
  instance: string;
  /** When the attempt was dispatched (ms). */
  startedAt: number;
  /** The job ended (completed, failed, expired or cancelled). */
  done: boolean;
}

export class InflightRepository {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {}

  /** The job's attempt in flight (or its last one), or null when Redis has no record of it. */
  async current(jobId: string): Promise<InflightAttempt | null> {
    const [attempt, node, instance, started, done] = await this.redis.hmget(this.keys.job(jobId), 'attempt', 'node', 'instance', 'started', 'done');
    if (!attempt || !node) return null;
    return { attempt: Number(attempt), nodeId: node, instance: instance ?? '', startedAt: Number(started ?? 0), done: done === '1' };
  }

  /** See COMPLETED. `event` must be the job's 'finished' event; `usage`: what the node claimed for what it delivered. */
  async completed(nodeId: string, jobId: string, event: JobEvent, usage: { model: string; tokens: number; bytes: number }): Promise<void> {
    const k = this.keys;
    await COMPLETED.run(this.redis, [k.nodeEarned(), k.node(nodeId), k.nodeSlots(nodeId), k.job(jobId), k.failureStreak(nodeId), k.usageSample(usage.model)], [k.live, nodeId, jobId, JSON.stringify(event), DONE_TTL_MS, usage.model, usage.tokens, usage.bytes, USAGE_SAMPLE_TTL_MS]);
  }

  /** See ENDED; returns the node whose slot the job held, or null. */
  async ended(jobId: string, event: JobEvent): Promise<string | null> {
    const node = await ENDED.run(this.redis, [this.keys.job(jobId), this.keys.nodeEarned()], [this.keys.live, jobId, JSON.stringify(event), DONE_TTL_MS]);
    return typeof node === 'string' ? node : null;
  }
}
