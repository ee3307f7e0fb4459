// Node presence and readiness in Redis.
//
//   <p>node:<id>    hash {instance, capacity, running, models (comma list), seen}; expires HEARTBEAT_TTL
//                   after the last heartbeat, which is how a silent node leaves rotation.
//   <p>ready:<m>    sorted set of node ids serving model m, scored by free slots (capacity - running).
//
// Reservation and release are Lua scripts, so "check capacity and take a slot" is one atomic step on
// every instance. Every slot returned (and every heartbeat of a node with free slots) is announced on
// <p>events:capacity, so waiting schedulers wake at once instead of polling. Stale readiness entries (their node's presence expired) are removed lazily by the
// scripts that meet them. The scripts build keys from a prefix argument rather than KEYS[], which ties
// them to one Redis server (not Redis Cluster; the network issue moves them to hash-tagged keys).
import type { Redis } from 'ioredis';
import { LuaScript, type RedisKeys } from './client.js';

/**
 * Upserts a node's presence from a registration or heartbeat.
 * ARGV: prefix, nodeId, instance, capacity, models (csv), running (node-reported), ttlMs, mode
 * mode 'register': a new connection; running is taken from the node.
 * mode 'heartbeat': running stays the server's count (it sees reservations the node has not yet), unless
 *   the presence was lost (expired, or Redis was flushed), in which case the node's count is used.
 * Returns 1 when the presence was (re)created, 0 when refreshed.
 */
const UPSERT = new LuaScript(`
local p, id, inst, cap, models, nodeRunning, ttl, mode = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6]), ARGV[7], ARGV[8]
local nk = p .. 'node:' .. id
local existed = redis.call('EXISTS', nk) == 1
local running = nodeRunning
local old = ''
if existed then
  old = redis.call('HGET', nk, 'models') or ''
  if mode == 'heartbeat' then running = tonumber(redis.call('HGET', nk, 'running') or '0') end
end
redis.call('HSET', nk, 'instance', inst, 'capacity', cap, 'running', running, 'models', models, 'seen', ARGV[9])
redis.call('PEXPIRE', nk, ttl)
local keep = {}
for m in string.gmatch(models, '[^,]+') do
  keep[m] = true
  local free = cap - running
  if free < 0 then free = 0 end
  redis.call('ZADD', p .. 'ready:' .. m, free, id)
end
for m in string.gmatch(old, '[^,]+') do
  if not keep[m] then redis.call('ZREM', p .. 'ready:' .. m, id) end
end
if cap > running and models ~= '' then redis.call('PUBLISH', p .. 'events:capacity', models) end
if existed then return 0 else return 1 end
`);

/**
 * Reserves one slot on the idle node with the most free slots serving a model, skipping excluded nodes.
 * ARGV: prefix, model, excluded (csv), candidates to examine
 * Returns {nodeId, instance} or nil.
 */
const RESERVE = new LuaScript(`
local p, model, maxc = ARGV[1], ARGV[2], tonumber(ARGV[4])
local ready = p .. 'ready:' .. model
local excluded = {}
for id in string.gmatch(ARGV[3], '[^,]+') do excluded[id] = true end
local cands = redis.call('ZREVRANGEBYSCORE', ready, '+inf', 1, 'LIMIT', 0, maxc)
for _, id in ipairs(cands) do
  if not excluded[id] then
    local nk = p .. 'node:' .. id
    local f = redis.call('HMGET', nk, 'capacity', 'running', 'models', 'instance')
    if not f[1] then
      redis.call('ZREM', ready, id)
    else
      local cap, run = tonumber(f[1]), tonumber(f[2] or '0')
      if run < cap then
        run = redis.call('HINCRBY', nk, 'running', 1)
        for m in string.gmatch(f[3], '[^,]+') do redis.call('ZADD', p .. 'ready:' .. m, cap - run, id) end
        return {id, f[4]}
      end
      redis.call('ZADD', ready, 0, id)
    end
  end
end
return nil
`);

/** Returns a slot to a node and announces it. ARGV: prefix, nodeId. Returns the node's free slots, or -1 when it is gone. */
const RELEASE = new LuaScript(`
local p, id = ARGV[1], ARGV[2]
local nk = p .. 'node:' .. id
local f = redis.call('HMGET', nk, 'capacity', 'running', 'models')
if not f[1] then return -1 end
local cap, run = tonumber(f[1]), tonumber(f[2] or '0') - 1
if run < 0 then run = 0 end
redis.call('HSET', nk, 'running', run)
for m in string.gmatch(f[3], '[^,]+') do redis.call('ZADD', p .. 'ready:' .. m, cap - run, id) end
redis.call('PUBLISH', p .. 'events:capacity', f[3])
return cap - run
`);

/** Removes a node's presence if the given instance still holds it. ARGV: prefix, nodeId, instance. */
const REMOVE = new LuaScript(`
local p, id, inst = ARGV[1], ARGV[2], ARGV[3]
local nk = p .. 'node:' .. id
local f = redis.call('HMGET', nk, 'instance', 'models')
if not f[1] or f[1] ~= inst then return 0 end
for m in string.gmatch(f[2] or '', '[^,]+') do redis.call('ZREM', p .. 'ready:' .. m, id) end
redis.call('DEL', nk)
return 1
`);

/** Counts live nodes serving a model, dropping stale entries. ARGV: prefix, model. */
const COUNT_LIVE = new LuaScript(`
local p, model = ARGV[1], ARGV[2]
local ready = p .. 'ready:' .. model
local n = 0
for _, id in ipairs(redis.call('ZRANGE', ready, 0, -1)) do
  if redis.call('EXISTS', p .. 'node:' .. id) == 1 then n = n + 1 else redis.call('ZREM', ready, id) end
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
    ]);
    return created === 1;
  }

  async reserve(model: string, exclude: readonly string[], candidates = 32): Promise<Reservation | null> {
    const r = (await RESERVE.run(this.redis, [this.keys.prefix, model, exclude.join(','), candidates])) as [string, string] | null;
    return r ? { nodeId: r[0], instance: r[1] } : null;
  }

  async release(nodeId: string): Promise<void> {
    await RELEASE.run(this.redis, [this.keys.prefix, nodeId]);
  }

  async remove(nodeId: string, instance: string): Promise<void> {
    await REMOVE.run(this.redis, [this.keys.prefix, nodeId, instance]);
  }

  async liveNodeCount(model: string): Promise<number> {
    return (await COUNT_LIVE.run(this.redis, [this.keys.prefix, model])) as number;
  }

  async instanceOf(nodeId: string): Promise<string | null> {
    return this.redis.hget(this.keys.node(nodeId), 'instance');
  }
}
