// The readiness index: the Redis layout that reservations search, and the Lua shared by the scripts that
// maintain it (presence.repository.ts for nodes, eligibility.mirror.ts for the admin's rules).
//
// Per node (written by registrations and heartbeats; expire the network config's heartbeat TTL after the last one):
//   <p>node:<id>         hash {instance, capacity (declared), reported, seen, network, region ('' undeclared), gpu,
//                        gpu_mem (MiB), models ('name@version,...'), pools (the readiness keys it is in),
//                        ceilings ('name@version=slots,...': declared capacity capped per GPU class and model
//                        by the network config), start (slow start: slots before any completed job),
//                        caps (the capabilities it declares, csv; domain/capabilities.ts)}
//   <p>node:<id>:slots   sorted set of the job ids holding a slot on the node, scored by reservation time
//   <p>online            sorted set of node ids by last registration or heartbeat (the status API's list)
//   <p>node-earned       hash node id -> jobs completed (over the scores window; +1 per completion, rewritten
//                        by the quality pass): a node fills at most `start` + that many slots (domain/capacity.ts)
//
// Readiness pools, sorted sets of node ids scored by free slots. A node is in one pool per model it
// serves and per group it belongs to, for its network and the version it runs:
//   <p>ready:<network>:<model>@<version>                  public: nodes in no isolated subcloud
//   <p>ready:<network>:<model>@<version>|sc=<subcloud>    members of a subcloud
// and each of these again with `|r=<region>` appended, for the nodes of that region. A job searches the
// one pool that matches its network, its model at the catalogue's current version, its subcloud (or
// none) and its region (or none): nodes of the other network, of other versions, of isolated subclouds
// (for a public job) or of other regions are never even scanned. The separators cannot occur in any of
// the names (domain/eligibility.ts). What a pool does not partition (GPU memory against the model's and
// the subcloud's floors, flags, free slots) is checked per candidate, among a bounded number of them.
//
// The admin's rules, mirrored from PostgreSQL (eligibility.mirror.ts; rebuilt from there after a loss
// of Redis):
//   <p>elig:revision          the revision of the rules mirrored; absent: no mirror (the next reservation rebuilds it)
//   <p>model-req:<model>      hash {version, min_gpu}: the catalogue's current version and GPU floor
//   <p>model-reqs             set of the models mirrored
//   <p>subclouds              set of the subclouds mirrored
//   <p>subcloud:<name>        hash {network, models (',a,b,', or '' for all), min_gpu, isolate ('0'|'1')}
//   <p>subcloud:<name>:members set of node ids
//   <p>node-subclouds:<id>    set of the subclouds a node is a member of
//
// <p> above is the live group's prefix (RedisKeys.live, '<prefix>{live}:'): every key here carries the
// one hash tag, so that a script's keys are in one Redis Cluster slot. Each script declares in KEYS[]
// every key it can name before it runs: the node's presence and slots, the job's record, node-earned,
// node-scores, the rules' revision, and for a placement the model's requirements and the job's subcloud
// with its members; the functions below take those as arguments. The keys a script only learns by
// reading cannot be declared: the pool a job searches (its version is in the model's requirements), the
// nodes found in it and their presence, slots and flags, a node's subclouds and their hashes, the pools a
// node was in, the node an in-flight job runs on. Those are built from <p>, passed as ARGV[1], whose hash
// tag keeps them in the declared keys' slot (a cluster refuses a script touching another slot's key, so
// one built without the tag fails loudly; test/integration/redis-cluster.test.ts).

/**
 * Lua: `repool(p, id, nk)` recomputes the pools a live node belongs to from its presence and the mirrored
 * subclouds, leaves the pools it no longer belongs to, and records the list; `rescore(p, id, nk, announce, earned)`
 * writes its free slots to each of its pools and, when `announce` and a slot is free, publishes the names
 * of its models on <p>events:capacity (waiting schedulers wake at once instead of polling).
 */
export const READINESS_LUA = `
local function pools_of(p, id, network, region, models)
  local quals, isolated = {}, false
  for _, s in ipairs(redis.call('SMEMBERS', p .. 'node-subclouds:' .. id)) do
    local iso = redis.call('HGET', p .. 'subcloud:' .. s, 'isolate')
    if iso then
      if iso == '1' then isolated = true end
      quals[#quals + 1] = '|sc=' .. s
    end
  end
  if not isolated then table.insert(quals, 1, '') end
  local keys = {}
  for mv in string.gmatch(models, '[^,]+') do
    for _, q in ipairs(quals) do
      local k = 'ready:' .. network .. ':' .. mv .. q
      keys[#keys + 1] = k
      if region ~= '' then keys[#keys + 1] = k .. '|r=' .. region end
    end
  end
  return keys
end

-- The slots a node may fill with model version mv: its ceiling for mv (from 'ceilings'; the declared
-- capacity when mv has none) and at most what it has earned: its start slots plus its completed jobs
-- (a presence without 'start', written by an older version, has no slow start).
local function slot_limit(earned, id, cap, ceilings, start, mv)
  local limit = cap
  local s, key = ',' .. (ceilings or '') .. ',', ',' .. mv .. '='
  local at = string.find(s, key, 1, true)
  if at then limit = math.min(limit, tonumber(string.match(s, '^(%d+)', at + #key)) or cap) end
  if start then limit = math.min(limit, tonumber(start) + tonumber(redis.call('HGET', earned, id) or '0')) end
  return limit
end

local function rescore(p, id, nk, announce, earned)
  local f = redis.call('HMGET', nk, 'capacity', 'reported', 'models', 'pools', 'ceilings', 'start')
  local cap, reported = tonumber(f[1]), tonumber(f[2] or '0')
  local used = math.max(redis.call('ZCARD', nk .. ':slots'), reported)
  local any = false
  for k in string.gmatch(f[4] or '', '[^,]+') do
    local free = slot_limit(earned, id, cap, f[5], f[6], string.match(k, '^ready:[^:]*:([^|]*)')) - used
    if free < 0 then free = 0 end
    if free > 0 then any = true end
    redis.call('ZADD', p .. k, free, id)
  end
  if announce and any and (f[3] or '') ~= '' then
    redis.call(PUBLISH, p .. 'events:capacity', (string.gsub(f[3], '@[^,]*', '')))
  end
  return any
end

local function repool(p, id, nk)
  local f = redis.call('HMGET', nk, 'network', 'region', 'models', 'pools')
  local keys = pools_of(p, id, f[1] or '', f[2] or '', f[3] or '')
  local keep = {}
  for _, k in ipairs(keys) do keep[k] = true end
  for k in string.gmatch(f[4] or '', '[^,]+') do
    if not keep[k] then redis.call('ZREM', p .. k, id) end
  end
  redis.call('HSET', nk, 'pools', table.concat(keys, ','))
end

-- True when a node may take jobs of its subcloud sc (a member), or, for sc == '', public jobs (it is
-- a member of no isolated subcloud).
local function member_ok(p, id, sc, members)
  if sc ~= '' then return redis.call('SISMEMBER', members, id) == 1 end
  for _, s in ipairs(redis.call('SMEMBERS', p .. 'node-subclouds:' .. id)) do
    if redis.call('HGET', p .. 'subcloud:' .. s, 'isolate') == '1' then return false end
  end
  return true
end

-- The pool a job searches and the GPU floor it needs, or nil when no node can serve it under the
-- mirrored rules (a model the catalogue does not know, a subcloud that does not exist, is on another
-- network or does not allow the model). ARGV layout shared by RESERVE and COUNT: network, model,
-- region ('' any), subcloud ('' public).
local function placement(p, req_key, sc_key, network, model, region, sc)
  local req = redis.call('HMGET', req_key, 'version', 'min_gpu')
  if not req[1] then return nil end
  local floor, qual = tonumber(req[2]), ''
  if sc ~= '' then
    local s = redis.call('HMGET', sc_key, 'network', 'models', 'min_gpu')
    if not s[1] or s[1] ~= network then return nil end
    if s[2] ~= '' and not string.find(s[2], ',' .. model .. ',', 1, true) then return nil end
    floor = math.max(floor, tonumber(s[3]))
    qual = '|sc=' .. sc
  end
  if region ~= '' then qual = qual .. '|r=' .. region end
  local mv = model .. '@' .. req[1]
  return p .. 'ready:' .. network .. ':' .. mv .. qual, mv, floor
end

-- Whether a pool entry still describes the node (f = HMGET of NODE_FIELDS): false when its
-- presence expired or it came back with another network, region or model version (a stale entry).
local function entry_current(f, network, mv, region)
  if not f[1] or f[2] ~= network then return false end
  if region ~= '' and f[3] ~= region then return false end
  return string.find(',' .. (f[4] or '') .. ',', ',' .. mv .. ',', 1, true) ~= nil
end

-- The node fields the reservation and the eligible count read, in this order (f[1] .. f[9]).
local NODE_FIELDS = {'capacity', 'network', 'region', 'models', 'gpu_mem', 'reported', 'instance', 'ceilings', 'start', 'caps'}

-- Whether a node's declared capabilities (csv) include every one the job needs (csv; '' for none: plain
-- chat checks nothing).
local function has_caps(caps, needs)
  if needs == nil or needs == '' then return true end
  local have = ',' .. (caps or '') .. ','
  for c in string.gmatch(needs, '[^,]+') do
    if not string.find(have, ',' .. c .. ',', 1, true) then return false end
  end
  return true
end

-- A pool entry checked against a job's placement, the one rule both RESERVE and COUNT_ELIGIBLE apply (the
-- count decides when a job no node can take fails, so the two must never disagree): 'stale' (dropped
-- from the pool here), 'ineligible' (below the GPU floor, not a member of the job's subcloud or in an
-- isolated one, flagged, without a capability the job needs) or 'ok'. f = HMGET of NODE_FIELDS.
local function candidate(p, ready, id, f, network, mv, region, floor, sc, members, now, needs)
  if not entry_current(f, network, mv, region) then
    redis.call('ZREM', ready, id)
    return 'stale'
  end
  if tonumber(f[5] or '0') >= floor and has_caps(f[10], needs) and member_ok(p, id, sc, members)
      and tonumber(redis.call('GET', p .. 'unroutable:' .. id) or '0') <= now then
    return 'ok'
  end
  return 'ineligible'
end
`;
