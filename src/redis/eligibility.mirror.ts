// The Redis mirror of the eligibility rules the admin sets in PostgreSQL (migration 0012): each model's
// current version and GPU floor, and the subclouds with their members. The reservation scripts read it
// (layout in readiness.lua.ts); PostgreSQL stays the authority.
//
// The mirror is replaced whole, in one script, from a snapshot of PostgreSQL taken at one revision (a
// counter every admin change bumps in its own transaction). The script refuses a snapshot older than the
// one mirrored, so two instances writing at once (an admin change beside a maintenance tick) cannot leave
// the older picture behind. Replacing also moves the affected live nodes between readiness pools at once
// (a node joining an isolated subcloud leaves the public pool in the same step), so an admin change is
// in force at the very next reservation on every instance.
//
// Cost: the script walks every subcloud member, old and new; it blocks Redis for a few milliseconds per
// thousand members. Admin changes are rare, and maintenance replaces the mirror only when its revision
// differs from PostgreSQL's.
import { LuaScript, type RedisKeys, type RedisClient } from './client.js';
import { READINESS_LUA } from './readiness.lua.js';
import type { EligibilityRules } from '../domain/eligibility.js';


/**
 * KEYS: the revision, the set of models mirrored, the set of subclouds mirrored, node-earned (the per-model
 * and per-subcloud keys of the old mirror are learnt from those sets, and the affected nodes from the
 * members: built from the live prefix, the same slot; the new rules' keys too, to keep one code path).
 * ARGV: live prefix, revision ('<database>:<counter>'), rules (JSON: {models: [[name, version, minGpu]], subclouds: [[name, network,
 * models[], minGpu, isolate(0|1), members[]]]}). Returns 1 when applied, 0 when a newer revision is mirrored.
 */
const REPLACE = new LuaScript(`${READINESS_LUA}
local p, rev = ARGV[1], ARGV[2]
local rules = cjson.decode(ARGV[3])
-- Refuse only an older revision of the same database's series; another database's mirror is replaced.
local db, n = string.match(rev, '^(.*):(%d+)$')
local cdb, cn = string.match(redis.call('GET', KEYS[1]) or '', '^(.*):(%d+)$')
if cdb == db and tonumber(cn) > tonumber(n) then return 0 end

for _, name in ipairs(redis.call('SMEMBERS', KEYS[2])) do redis.call('DEL', p .. 'model-req:' .. name) end
redis.call('DEL', KEYS[2])
for _, m in ipairs(rules.models) do
  redis.call('HSET', p .. 'model-req:' .. m[1], 'version', m[2], 'min_gpu', m[3])
  redis.call('SADD', KEYS[2], m[1])
end

local affected = {}
for _, name in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  local members = p .. 'subcloud:' .. name .. ':members'
  for _, id in ipairs(redis.call('SMEMBERS', members)) do
    redis.call('SREM', p .. 'node-subclouds:' .. id, name)
    affected[id] = true
  end
  redis.call('DEL', p .. 'subcloud:' .. name, members)
end
redis.call('DEL', KEYS[3])
for _, s in ipairs(rules.subclouds) do
  local name = s[1]
  local models = ''
  if #s[3] > 0 then models = ',' .. table.concat(s[3], ',') .. ',' end
  redis.call('HSET', p .. 'subcloud:' .. name, 'network', s[2], 'models', models, 'min_gpu', s[4], 'isolate', s[5])
  redis.call('SADD', KEYS[3], name)
  for _, id in ipairs(s[6]) do
    redis.call('SADD', p .. 'subcloud:' .. name .. ':members', id)
    redis.call('SADD', p .. 'node-subclouds:' .. id, name)
    affected[id] = true
  end
end

for id in pairs(affected) do
  local nk = p .. 'node:' .. id
  if redis.call('EXISTS', nk) == 1 then
    repool(p, id, nk)
    rescore(p, id, nk, true, KEYS[4])
  end
end
redis.call('SET', KEYS[1], rev)
return 1
`);

export class EligibilityMirror {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {}

  /** The revision mirrored; null when there is no mirror (never written, or Redis lost it). */
  revision(): Promise<string | null> {
    return this.redis.get(this.keys.eligibilityRevision());
  }

  /** Replaces the mirror with `rules`; false when a newer revision was already mirrored. */
  async replace(rules: EligibilityRules): Promise<boolean> {
    const doc = {
      models: rules.models.map((m) => [m.name, m.version, m.minGpuMemoryMb]),
      subclouds: rules.subclouds.map((s) => [s.name, s.network, s.models, s.minGpuMemoryMb, s.isolate ? 1 : 0, s.members]),
    };
    // cjson decodes an empty JSON array as an empty table either way; no special case needed.
    return (await REPLACE.run(this.redis, [this.keys.eligibilityRevision(), this.keys.modelRequirementsIndex(), this.keys.subclouds(), this.keys.nodeEarned()], [this.keys.live, rules.revision, JSON.stringify(doc)])) === 1;
  }
}
