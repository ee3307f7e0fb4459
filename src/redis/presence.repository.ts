// Node presence, capacity and readiness in Redis; the key layout and the eligibility rules it enforces
// are in readiness.lua.ts and domain/eligibility.ts.
//
// A node's slots in use are max(reservations, the count the node itself reports): reservations cover
// jobs the node has not heard of yet, the node's count covers work it still does for attempts the
// network has already written off (after a reconnect, say). Counts cannot tell those apart, so while a
// node finishes written-off work, max() may hand out a slot too many until its next heartbeat; the node
// refuses work beyond its capacity and the job is retried elsewhere. Releasing removes the job's member, so a
// release is idempotent and can never free a slot twice; heartbeats drop members older than any attempt
// can live, so a release lost to a crash heals by itself.
//
// Reservation and release are Lua scripts, so "check eligibility and capacity and take a slot" is one
// atomic step on every instance. Stale readiness entries (their node's presence expired, or it came back
// declaring something else) are removed lazily by the scripts that meet them.
//
// The admin's rules (model versions and floors, subclouds) are read from their Redis mirror. Without a
// mirror (Redis lost everything) a reservation cannot tell an isolated node from a public one, so the
// scripts answer "unsynced" and this repository has the mirror rebuilt from PostgreSQL (`resync`) and
// tries once more: a read-through repair, instead of routing blind until the next maintenance tick.
import { LuaScript, type RedisKeys, type RedisClient } from './client.js';
import { READINESS_LUA } from './readiness.lua.js';
import type { DeclaredModel } from '../domain/protocol.js';
import type { Gpu, Network, Placement } from '../domain/eligibility.js';
import { NEW_NODE_SCORE } from '../domain/scores.js';
import type { Capability } from '../domain/capabilities.js';

/** What the scripts answer when the rules' mirror is missing. */
const UNSYNCED = -1;
/** What RESERVE answers when the attempt it would claim is not the job's next one (redis/inflight.repository.ts). */
const FENCED = -2;

/**
 * Upserts a node's presence from a registration or heartbeat.
 * KEYS: the node's presence, its slots, the online list, node-earned. ARGV: live prefix, nodeId, instance, capacity, models ('name@version' csv), reported running, ttlMs, mode,
 * now, slotMaxAgeMs, network, region ('' undeclared), gpu class, gpu memory (MiB), ceilings
 * ('name@version=slots' csv), start slots, capabilities (csv)
 * mode 'register' (a new connection): reservations of the old connection are dropped (its attempts were
 * failed when it closed). mode 'heartbeat': reservations older than slotMaxAgeMs are dropped.
 * Returns 1 when the presence was (re)created, 0 when refreshed.
 */
const UPSERT = new LuaScript(`${READINESS_LUA}
local p, id, inst, cap, models, reported, ttl, mode, now, maxAge = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7]), ARGV[8], tonumber(ARGV[9]), tonumber(ARGV[10])
local nk, slots, online = KEYS[1], KEYS[2], KEYS[3]
local existed = redis.call('EXISTS', nk) == 1
if mode == 'register' then redis.call('DEL', slots) else redis.call('ZREMRANGEBYSCORE', slots, '-inf', now - maxAge) end
redis.call('HSET', nk, 'instance', inst, 'capacity', cap, 'reported', reported, 'models', models, 'seen', now,
  'network', ARGV[11], 'region', ARGV[12], 'gpu', ARGV[13], 'gpu_mem', ARGV[14], 'ceilings', ARGV[15], 'start', ARGV[16], 'caps', ARGV[17])
redis.call('PEXPIRE', nk, ttl)
redis.call('PEXPIRE', slots, ttl)
-- The status API's list of nodes; entries older than the presence TTL belong to expired nodes.
redis.call('ZADD', online, now, id)
redis.call('ZREMRANGEBYSCORE', online, '-inf', now - ttl)
repool(p, id, nk)
rescore(p, id, nk, true, KEYS[4])
if existed then return 0 else return 1 end
`);

/**
 * Reserves a slot for a job on an eligible node of its pool, skipping excluded nodes and flagged ones
 * (<p>unroutable:<id> holds a time in the future; node-flags.mirror.ts). A node's free slots are counted
 * against what it may fill for the job's model (slot_limit: its ceiling, and what it has earned), never
 * against its declared capacity alone. Among the eligible nodes with
 * a free slot (the pool's `candidates` with the most free slots are examined), one is drawn at random with
 * weight free slots × score (<p>node-scores, written by the quality service; a node without a score counts
 * as new, NEW_NODE_SCORE): idle capacity is still preferred, trusted nodes get more of the work, and a node
 * with a poor score still gets some, so that it can earn its way back.
 * KEYS: the job's in-flight record, the rules' revision, then the placement's keys (placementKeys: the model's
 * requirements, node-scores, node-earned, and for a subcloud its hash and members). ARGV: live prefix,
 * network, model, region, subcloud, excluded (csv), candidates to examine, jobId, now,
 * a random integer in [0, 1000000), attempt to claim (0: none), the claim's TTL (ms), the capabilities the
 * job needs (csv, '' for none).
 * With an attempt to claim, the reservation is also the attempt's start: <p>job:<jobId> (the job's
 * in-flight record, redis/inflight.repository.ts) names the attempt and its node, and a claim of an
 * attempt not above the recorded one, or of a finished job, is refused (-2) before any slot is taken: two
 * schedulers holding duplicate messages of one job cannot both start its attempt.
 * Returns {nodeId, instance}, nil when no candidate can take it, -1 when the rules' mirror is missing.
 */
const RESERVE = new LuaScript(`${READINESS_LUA}
local p, network, model, region, sc = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local maxc, job, now, spin = tonumber(ARGV[7]), ARGV[8], tonumber(ARGV[9]), tonumber(ARGV[10])
local attempt, claimTtl, needs = tonumber(ARGV[11]), tonumber(ARGV[12]), ARGV[13]
local jk, scores, earned, members = KEYS[1], KEYS[4], KEYS[5], KEYS[7]
if attempt > 0 then
  local cur = redis.call('HMGET', jk, 'attempt', 'done')
  if cur[2] == '1' or (cur[1] and tonumber(cur[1]) >= attempt) then return ${FENCED} end
end
if redis.call('EXISTS', KEYS[2]) == 0 then return ${UNSYNCED} end
local ready, mv, floor = placement(p, KEYS[3], KEYS[6], network, model, region, sc)
if not ready then return nil end
local excluded = {}
for id in string.gmatch(ARGV[6], '[^,]+') do excluded[id] = true end
local raw = redis.call('ZREVRANGEBYSCORE', ready, '+inf', 1, 'LIMIT', 0, maxc)
local picks, total = {}, 0
for _, id in ipairs(raw) do
  if not excluded[id] then
    local nk = p .. 'node:' .. id
    local f = redis.call('HMGET', nk, unpack(NODE_FIELDS))
    if candidate(p, ready, id, f, network, mv, region, floor, sc, members, now, needs) == 'ok' then
      local free = slot_limit(earned, id, tonumber(f[1]), f[8], f[9], mv) - math.max(redis.call('ZCARD', nk .. ':slots'), tonumber(f[6] or '0'))
      if free > 0 then
        local score = tonumber(redis.call('HGET', scores, id) or '${NEW_NODE_SCORE}')
        local weight = free * math.max(score, 0.001)
        total = total + weight
        picks[#picks + 1] = {id = id, nk = nk, instance = f[7], weight = weight}
      else
        rescore(p, id, nk, false, earned) -- its pool score said it had room: correct it
      end
    end
  end
end
if #picks == 0 then return nil end
local r = (spin / 1000000) * total
local chosen = picks[#picks]
for _, c in ipairs(picks) do
  r = r - c.weight
  if r < 0 then chosen = c break end
end
local slots = chosen.nk .. ':slots'
redis.call('ZADD', slots, now, job)
redis.call('PEXPIRE', slots, redis.call('PTTL', chosen.nk))
rescore(p, chosen.id, chosen.nk, false, earned)
if attempt > 0 then
  redis.call('HSET', jk, 'attempt', attempt, 'node', chosen.id, 'instance', chosen.instance, 'started', now)
  redis.call('PEXPIRE', jk, claimTtl)
end
return {chosen.id, chosen.instance}
`);

/**
 * Returns a job's slot on a node and announces it; a no-op when the job holds none. With an attempt, the
 * reservation is taken back whole: the job's in-flight record is dropped if it names that attempt on that
 * node (the attempt was never dispatched, and the same attempt may be claimed again).
 * KEYS: the job's in-flight record, the node's presence, its slots, node-earned. ARGV: live prefix, nodeId, jobId, attempt ('' for none).
 */
const RELEASE = new LuaScript(`${READINESS_LUA}
local p, id, job, attempt = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if attempt ~= '' then
  local jk = KEYS[1]
  local f = redis.call('HMGET', jk, 'attempt', 'node', 'done')
  if f[1] == attempt and f[2] == id and f[3] ~= '1' then redis.call('DEL', jk) end
end
local nk = KEYS[2]
if redis.call('ZREM', KEYS[3], job) == 0 or redis.call('EXISTS', nk) == 0 then return -1 end
return rescore(p, id, nk, true, KEYS[4])
`);

/**
 * Removes a node's presence if the given instance still holds it.
 * KEYS: the node's presence, its slots, the online list. ARGV: live prefix, nodeId, instance.
 */
const REMOVE = new LuaScript(`
local p, id, inst = ARGV[1], ARGV[2], ARGV[3]
local nk = KEYS[1]
local f = redis.call('HMGET', nk, 'instance', 'pools')
if not f[1] or f[1] ~= inst then return 0 end
for k in string.gmatch(f[2] or '', '[^,]+') do redis.call('ZREM', p .. k, id) end
redis.call('ZREM', KEYS[3], id)
redis.call('DEL', nk, KEYS[2])
return 1
`);

/**
 * Counts live, unflagged nodes eligible for a placement (free slots or not), up to `atMost` (0: all),
 * dropping stale entries. KEYS: the rules' revision, then the placement's keys (as RESERVE's). ARGV: live
 * prefix, network, model, region, subcloud, now, atMost, needs (csv).
 * Returns the count, or -1 when the rules' mirror is missing.
 */
const COUNT_ELIGIBLE = new LuaScript(`${READINESS_LUA}
local p, network, model, region, sc, now, atMost, needs = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8]
if redis.call('EXISTS', KEYS[1]) == 0 then return ${UNSYNCED} end
local ready, mv, floor = placement(p, KEYS[2], KEYS[5], network, model, region, sc)
if not ready then return 0 end
local n = 0
for _, id in ipairs(redis.call('ZRANGE', ready, 0, -1)) do
  local f = redis.call('HMGET', p .. 'node:' .. id, unpack(NODE_FIELDS))
  if candidate(p, ready, id, f, network, mv, region, floor, sc, KEYS[6], now, needs) == 'ok' then
    n = n + 1
    if atMost > 0 and n >= atMost then return n end
  end
end
return n
`);

export interface Reservation {
  nodeId: string;
  instance: string;
}

/** The attempt a reservation starts (see RESERVE): refused as 'fenced' when it is not the job's next one. */
export interface AttemptClaim {
  attempt: number;
  /** How long the job's in-flight record lives: past the job's deadline, when nothing can use it. */
  ttlMs: number;
}

/** What a node declares about itself at registration and in every heartbeat. */
export interface NodeDeclaration {
  nodeId: string;
  instance: string;
  capacity: number;
  running: number;
  network: Network;
  region: string | null;
  gpu: Gpu;
  models: readonly DeclaredModel[];
  /** Per 'name@version': the declared capacity capped by the network config (domain/capacity.ts capacityCeilings). */
  ceilings: ReadonlyMap<string, number>;
  /** Slow start: the slots the node may fill before it has completed any job. */
  startSlots: number;
  /** What its runtime can do beyond plain chat (domain/capabilities.ts). */
  capabilities?: readonly Capability[];
  mode: 'register' | 'heartbeat';
}

export class PresenceRepository {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    /** The presence TTL (read at every upsert: it follows the network config). */
    private readonly ttlMs: () => number,
    /** No attempt lives longer than this; a reservation older than it was leaked and is dropped. */
    private readonly slotMaxAgeMs: () => number,
    /** Rebuilds the mirror of the eligibility rules from PostgreSQL (EligibilityService.sync). */
    private readonly resync: () => Promise<void>,
  ) {}

  /** Returns true when the presence was created (new, expired or lost with Redis) rather than refreshed. */
  async upsert(n: NodeDeclaration): Promise<boolean> {
    const created = await UPSERT.run(this.redis, [this.keys.node(n.nodeId), this.keys.nodeSlots(n.nodeId), this.keys.onlineNodes(), this.keys.nodeEarned()], [
      this.keys.live,
      n.nodeId,
      n.instance,
      n.capacity,
      n.models.map((m) => `${m.name}@${m.version}`).join(','),
      n.running,
      this.ttlMs(),
      n.mode,
      Date.now(),
      this.slotMaxAgeMs(),
      n.network,
      n.region ?? '',
      n.gpu.name,
      n.gpu.memoryMb,
      [...n.ceilings].map(([mv, slots]) => `${mv}=${slots}`).join(','),
      n.startSlots,
      (n.capabilities ?? []).join(','),
    ]);
    return created === 1;
  }

  /**
   * Reserves a slot for `jobId` on a node eligible for `placement` with a free slot, drawn by free slots ×
   * score (see RESERVE), never one in `exclude`. At most `candidates` nodes of the job's pool are examined
   * (the most free first): the script's running time stays bounded on a large fleet, at the price that a
   * job whose pool's top candidates are all ineligible for it (below its GPU floor, flagged) waits for
   * the next try.
   */
  async reserve(placement: Placement, jobId: string, exclude: readonly string[], candidates = 32): Promise<Reservation | null> {
    const r = await this.runReserve(placement, jobId, exclude, null, candidates);
    return r === 'fenced' ? null : r;
  }

  /** reserve, which also starts attempt `claim.attempt` of the job; 'fenced' when that is not the job's next attempt (see RESERVE). */
  async reserveAttempt(placement: Placement, jobId: string, exclude: readonly string[], claim: AttemptClaim, candidates = 32): Promise<Reservation | 'fenced' | null> {
    return this.runReserve(placement, jobId, exclude, claim, candidates);
  }

  private async runReserve(placement: Placement, jobId: string, exclude: readonly string[], claim: AttemptClaim | null, candidates: number): Promise<Reservation | 'fenced' | null> {
    const run = () =>
      RESERVE.run(this.redis, [this.keys.job(jobId), this.keys.eligibilityRevision(), ...placementKeys(this.keys, placement)], [
        this.keys.live,
        ...placementArgs(placement),
        exclude.join(','),
        candidates,
        jobId,
        Date.now(),
        Math.floor(Math.random() * 1_000_000),
        claim?.attempt ?? 0,
        Math.max(1, Math.ceil(claim?.ttlMs ?? 1)),
        needsArg(placement),
      ]);
    const r = (await this.synced(run)) as [string, string] | number | null;
    if (r === FENCED) return 'fenced';
    return Array.isArray(r) ? { nodeId: r[0], instance: r[1] } : null;
  }

  /** Returns `jobId`'s slot on the node; idempotent. With `unclaim`, also takes back the attempt it started (see RELEASE). */
  async release(nodeId: string, jobId: string, unclaim?: number): Promise<void> {
    await RELEASE.run(this.redis, [this.keys.job(jobId), this.keys.node(nodeId), this.keys.nodeSlots(nodeId), this.keys.nodeEarned()], [this.keys.live, nodeId, jobId, unclaim ?? '']);
  }

  async remove(nodeId: string, instance: string): Promise<void> {
    await REMOVE.run(this.redis, [this.keys.node(nodeId), this.keys.nodeSlots(nodeId), this.keys.onlineNodes()], [this.keys.live, nodeId, instance]);
  }

  /**
   * Live, unflagged nodes that could run a job of this placement (busy or not), counted up to `atMost`
   * (callers asking "is there any?" pass 1, which stops at the first). Walks the placement's whole pool.
   */
  async liveNodeCount(placement: Placement, atMost = 0): Promise<number> {
    const run = () => COUNT_ELIGIBLE.run(this.redis, [this.keys.eligibilityRevision(), ...placementKeys(this.keys, placement)], [this.keys.live, ...placementArgs(placement), Date.now(), atMost, needsArg(placement)]);
    return (await this.synced(run)) as number;
  }

  /** Runs a script; when it finds no rules mirror, has the mirror rebuilt and runs it once more. */
  private async synced(run: () => Promise<unknown>): Promise<unknown> {
    const first = await run();
    if (first !== UNSYNCED) return first;
    await this.resync();
    const second = await run();
    if (second === UNSYNCED) throw new Error('the eligibility rules are not mirrored in Redis after a resync');
    return second;
  }
}

/** The capabilities a placement's job needs, as the scripts take them. */
function needsArg(p: Placement): string {
  return p.needs?.join(',') ?? '';
}

/**
 * The keys a placement reads that are known before the call, in the order RESERVE and COUNT_ELIGIBLE
 * take them: the model's requirements, node-scores, node-earned, then the subcloud's hash and members
 * (a public job has none). The pool itself is learnt in the script (its version is in the requirements).
 */
function placementKeys(keys: RedisKeys, p: Placement): string[] {
  const subcloud = p.subcloud ? [keys.subcloud(p.subcloud), keys.subcloudMembers(p.subcloud)] : [];
  return [keys.modelRequirements(p.model), keys.nodeScores(), keys.nodeEarned(), ...subcloud];
}

function placementArgs(p: Placement): string[] {
  return [p.network, p.model, p.region ?? '', p.subcloud ?? ''];
}
