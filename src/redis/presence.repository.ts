// Node presence, capacity and readiness in Redis.
//
//   <p>node:<id>        hash {instance, capacity, reported, models (comma list), seen}; expires
//                       HEARTBEAT_TTL after the last heartbeat, which is how a silent node leaves rotation.
//   <p>node:<id>:slots  sorted set of the job ids holding a slot on the node, scored by reservation time.
//   <p>ready:<m>        sorted set of node ids serving model m, scored by free slots.
//
// A node's slots in use are max(reservations, the count the node itself reports): reservations cover
// jobs the node has not heard of yet, the node's count covers work it still does for attempts the
// network has already written off (after a reconnect, say). Counts cannot tell those apart, so while a
// node finishes written-off work, max() may hand out a slot too many until its next heartbeat; the node
// refuses work beyond its capacity and the job is retried elsewhere. Releasing removes the job's member, so a
// release is idempotent and can never free a slot twice; heartbeats drop members older than any attempt
// can live, so a release lost to a crash heals by itself.
//
// Reservation and release are Lua scripts, so "check capacity and take a slot" is one atomic step on
// every instance. Every slot returned (and every heartbeat of a node with free slots) is announced on
// <p>events:capacity, so waiting schedulers wake at once instead of polling. Stale readiness entries
// (their node's presence expired) are removed lazily by the scripts that meet them. The scripts build
// keys from a prefix argument rather than KEYS[], which ties them to one Redis server (not Redis Cluster;
// the network issue moves them to hash-tagged keys).
import type { Redis } from 'ioredis';
import { LuaScript, type RedisKeys } from './client.js';

/** Shared Lua: recompute a node's free slots, write them to each of its models' readiness sets, announce. */
const REFRESH = `
local function refresh(p, id, nk, announce)
  local f = redis.call('HMGET', nk, 'capacity', 'reported', 'models')
  local cap, reported = tonumber(f[1]), tonumber(f[2] or '0')
  local used = math.max(redis.call('ZCARD', nk .. ':slots'), reported)
  local free = cap - used
  if free < 0 then free = 0 end
  for m in string.gmatch(f[3] or '', '[^,]+') do redis.call('ZADD', p .. 'ready:' .. m, free, id) end
  if announce and free > 0 and (f[3] or '') ~= '' then redis.call('PUBLISH', p .. 'events:capacity', f[3]) end
  return free
end
`;

/**
 * Upserts a node's presence from a registration or heartbeat.
 * ARGV: prefix, nodeId, instance, capacity, models (csv), reported running, ttlMs, mode, now, slotMaxAgeMs
 * mode 'register' (a new connection): reservations of the old connection are dropped (its attempts were
 * failed when it closed). mode 'heartbeat': reservations older than slotMaxAgeMs are dropped.
 * Returns 1 when the presence was (re)created, 0 when refreshed.
 */
const UPSERT = new LuaScript(`${REFRESH}
local p, id, inst, cap, models, reported, ttl, mode, now, maxAge = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], tonumber(ARGV[9]), tonumber(ARGV[10])
local nk = p .. 'node:' .. id
local slots = nk .. ':slots'
local existed = redis.call('EXISTS', nk) == 1
local old = existed and (redis.call('HGET', nk, 'models') or '') or ''
if mode == 'register' then redis.call('DEL', slots) else redis.call('ZREMRANGEBYSCORE', slots, '-inf', now - maxAge) end
redis.call('HSET', nk, 'instance', inst, 'capacity', cap, 'reported', reported, 'models', models, 'seen', now)
redis.call('PEXPIRE', nk, ttl)
redis.call('PEXPIRE', slots, ttl)
local keep = {}
for m in string.gmatch(models, '[^,]+') do keep[m] = true end
for m in string.gmatch(old, '[^,]+') do
  if not keep[m] then redis.call('ZREM', p .. 'ready:' .. m, id) end
end
refresh(p, id, nk, true)
if existed then return 0 else return 1 end
`);

/**
 * Reserves a slot for a job on the node with the most free slots serving a model, skipping excluded nodes
 * and flagged ones (<p>unroutable:<id> holds a time in the future; see node-flags.repository.ts).
 * ARGV: prefix, model, excluded (csv), candidates to examine, jobId, now, a random non-negative integer
 * Returns {nodeId, instance} or nil.
 */
const RESERVE = new LuaScript(`${REFRESH}
local p, model, maxc, job, now, spin = ARGV[1], ARGV[2], tonumber(ARGV[4]), ARGV[5], ARGV[6], tonumber(ARGV[7])
local ready = p .. 'ready:' .. model
local excluded = {}
for id in string.gmatch(ARGV[3], '[^,]+') do excluded[id] = true end
-- Most free slots first; among the nodes tied for the most, start at a caller-chosen random offset, so
-- that equally idle nodes share the work instead of the first in key order taking all of it.
local raw = redis.call('ZREVRANGEBYSCORE', ready, '+inf', 1, 'WITHSCORES', 'LIMIT', 0, maxc)
local tied = 0
for i = 2, #raw, 2 do if raw[i] == raw[2] then tied = tied + 1 end end
local order = {}
for i = 1, #raw / 2 do
  local k = i
  if i <= tied then k = ((i - 1 + spin) % tied) + 1 end
  order[i] = raw[2 * k - 1]
end
for _, id in ipairs(order) do
  if not excluded[id] then
    local nk = p .. 'node:' .. id
    local f = redis.call('HMGET', nk, 'capacity', 'reported', 'instance', 'models')
    if not f[1] or not string.find(',' .. (f[4] or '') .. ',', ',' .. model .. ',', 1, true) then
      -- Presence expired, or the node came back serving other models: a stale readiness entry.
      redis.call('ZREM', ready, id)
    else
      local slots = nk .. ':slots'
      local blocked = tonumber(redis.call('GET', p .. 'unroutable:' .. id) or '0') > tonumber(now)
      if not blocked and math.max(redis.call('ZCARD', slots), tonumber(f[2] or '0')) < tonumber(f[1]) then
        redis.call('ZADD', slots, now, job)
        redis.call('PEXPIRE', slots, redis.call('PTTL', nk))
        refresh(p, id, nk, false)
        return {id, f[3]}
      end
      refresh(p, id, nk, false)
    end
  end
end
return nil
`);

/** Returns a job's slot on a node and announces it; a no-op when the job holds none. ARGV: prefix, nodeId, jobId. */
const RELEASE = new LuaScript(`${REFRESH}
local p, id, job = ARGV[1], ARGV[2], ARGV[3]
local nk = p .. 'node:' .. id
if redis.call('ZREM', nk .. ':slots', job) == 0 or redis.call('EXISTS', nk) == 0 then return -1 end
return refresh(p, id, nk, true)
`);

/** Removes a node's presence if the given instance still holds it. ARGV: prefix, nodeId, instance. */
const REMOVE = new LuaScript(`
local p, id, inst = ARGV[1], ARGV[2], ARGV[3]
local nk = p .. 'node:' .. id
local f = redis.call('HMGET', nk, 'instance', 'models')
if not f[1] or f[1] ~= inst then return 0 end
for m in string.gmatch(f[2] or '', '[^,]+') do redis.call('ZREM', p .. 'ready:' .. m, id) end
redis.call('DEL', nk, nk .. ':slots')
return 1
`);

/** Counts live, unflagged nodes serving a model, dropping stale entries. ARGV: prefix, model, now. */
const COUNT_LIVE = new LuaScript(`
local p, model, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local ready = p .. 'ready:' .. model
local n = 0
for _, id in ipairs(redis.call('ZRANGE', ready, 0, -1)) do
  local models = redis.call('HGET', p .. 'node:' .. id, 'models')
  if models and string.find(',' .. models .. ',', ',' .. model .. ',', 1, true) then
    if tonumber(redis.call('GET', p .. 'unroutable:' .. id) or '0') <= now then n = n + 1 end
  else
    redis.call('ZREM', ready, id)
  end
end
return n
`);

export interface Reservation {
  nodeId: string;
  instance: string;
}

export class PresenceRepository {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly ttlMs: number,
    /** No attempt lives longer than this; a reservation older than it was leaked and is dropped. */
    private readonly slotMaxAgeMs: number,
  ) {}

  /** Returns true when the presence was created (new, expired or lost with Redis) rather than refreshed. */
  async upsert(p: { nodeId: string; instance: string; capacity: number; models: readonly string[]; running: number; mode: 'register' | 'heartbeat' }): Promise<boolean> {
    const created = await UPSERT.run(this.redis, [
      this.keys.prefix,
      p.nodeId,
      p.instance,
      p.capacity,
      p.models.join(','),
      p.running,
      this.ttlMs,
      p.mode,
      Date.now(),
      this.slotMaxAgeMs,
    ]);
    return created === 1;
  }

  /** Reserves a slot for `jobId` on an idle node serving `model`, preferring nodes not in `exclude`. */
  async reserve(model: string, jobId: string, exclude: readonly string[], candidates = 32): Promise<Reservation | null> {
    const spin = Math.floor(Math.random() * 1_000_000);
    const r = (await RESERVE.run(this.redis, [this.keys.prefix, model, exclude.join(','), candidates, jobId, Date.now(), spin])) as [string, string] | null;
    return r ? { nodeId: r[0], instance: r[1] } : null;
  }

  /** Returns `jobId`'s slot on the node; idempotent. */
  async release(nodeId: string, jobId: string): Promise<void> {
    await RELEASE.run(this.redis, [this.keys.prefix, nodeId, jobId]);
  }

  async remove(nodeId: string, instance: string): Promise<void> {
    await REMOVE.run(this.redis, [this.keys.prefix, nodeId, instance]);
  }

  async liveNodeCount(model: string): Promise<number> {
    return (await COUNT_LIVE.run(this.redis, [this.keys.prefix, model, Date.now()])) as number;
  }
}
