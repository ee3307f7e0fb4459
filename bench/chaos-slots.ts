// The chaos run's node-slot check (issue 13, part 1: zero leaked node slots): once every accepted job has
// ended, no node may still hold a slot for a job (the reservations in <p>{live}:node:<id>:slots), and each
// live node's readiness pools must score it at what it really has free (readiness.lua.ts rescore: its slot
// limit less max(slots held, what it reports running)). A slot leaked by a fault (a process killed between
// a reservation and its release, Redis restarted under a completion) heals by itself when a heartbeat
// drops reservations older than any attempt can live; the check waits for that, bounded, and reports how
// many slots were held at the drain and how long they took to heal.
import { Redis } from 'ioredis';
import { RedisKeys } from '../src/redis/client.js';

export interface SlotCheck {
  /** Slots held (over all nodes) when every job had ended. */
  heldAtDrain: number;
  /** Slots still held at the end of the wait (leaked: the failure). */
  heldAtEnd: number;
  /** How long the held slots took to return (ms), null when none were held or they never returned. */
  healedInMs: number | null;
  /** Pool entries whose score is not the node's free slots: "<pool> <node>: <score> != <expected>". */
  inconsistentPools: string[];
}

async function scan(redis: Redis, pattern: string): Promise<string[]> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    out.push(...keys);
  } while (cursor !== '0');
  return out;
}

async function slotsHeld(redis: Redis, keys: RedisKeys): Promise<number> {
  let held = 0;
  for (const k of await scan(redis, `${keys.live}node:*:slots`)) held += await redis.zcard(k);
  return held;
}

/** Pool scores against each live node's presence (call once no slot is held). */
async function poolMismatches(redis: Redis, keys: RedisKeys): Promise<string[]> {
  const out: string[] = [];
  const earned = await redis.hgetall(keys.nodeEarned());
  for (const nk of await scan(redis, `${keys.live}node:*`)) {
    if (nk.endsWith(':slots')) continue;
    const id = nk.slice(`${keys.live}node:`.length);
    const [capacity, reported, pools, ceilings, start] = await redis.hmget(nk, 'capacity', 'reported', 'pools', 'ceilings', 'start');
    if (capacity === null) continue; // expired meanwhile
    const used = Math.max(await redis.zcard(keys.nodeSlots(id)), Number(reported ?? 0));
    for (const pool of (pools ?? '').split(',').filter(Boolean)) {
      const mv = /^ready:[^:]*:([^|]*)/.exec(pool)?.[1] ?? '';
      const ceiling = new Map((ceilings ?? '').split(',').filter(Boolean).map((c) => [c.split('=')[0], Number(c.split('=')[1])])).get(mv);
      let limit = Math.min(Number(capacity), ceiling ?? Infinity);
      if (start) limit = Math.min(limit, Number(start) + Number(earned[id] ?? 0));
      const expected = Math.max(0, limit - used);
      const score = await redis.zscore(`${keys.live}${pool}`, id);
      if (score === null || Number(score) !== expected) out.push(`${pool} ${id}: ${score ?? 'absent'} != ${expected}`);
    }
  }
  return out;
}

/** Waits up to `healWithinMs` for every held slot to return, then checks the pools' scores. */
export async function checkNodeSlots(redisUrl: string, prefix: string, healWithinMs: number): Promise<SlotCheck> {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 3 });
  const keys = new RedisKeys(prefix);
  try {
    const t0 = Date.now();
    const heldAtDrain = await slotsHeld(redis, keys);
    let held = heldAtDrain;
    while (held > 0 && Date.now() - t0 < healWithinMs) {
      await new Promise((r) => setTimeout(r, 2_000));
      held = await slotsHeld(redis, keys);
    }
    const healedInMs = heldAtDrain > 0 && held === 0 ? Date.now() - t0 : null;
    // A heartbeat rescoring each node after its last slot returned: the pools may lag one heartbeat.
    let inconsistentPools = await poolMismatches(redis, keys);
    for (let i = 0; i < 10 && inconsistentPools.length > 0; i++) {
      await new Promise((r) => setTimeout(r, 1_000));
      inconsistentPools = await poolMismatches(redis, keys);
    }
    return { heldAtDrain, heldAtEnd: held, healedInMs, inconsistentPools };
  } finally {
    redis.disconnect();
  }
}
