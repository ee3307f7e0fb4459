// Pub/sub on one server or on a cluster, the same way for every caller (job-events.ts, job-streams.ts)
// and for the scripts that publish (LuaScript's PUBLISH local).
//
// On a cluster, classic PUBLISH reaches every node (the cluster bus broadcasts it), and its reply counts
// only the subscribers connected to the node that took the PUBLISH. JobEvents.dispatch reads that count
// to learn whether the io instance holding a node still listens: with the instance subscribed through
// another node it read 0, the scheduler took the node out of rotation as gone, and jobs ended
// `no_node_available`. Sharded pub/sub (Redis 7: SPUBLISH, SSUBSCRIBE) sends a channel's messages to the
// one shard that owns the channel's slot, where all of its subscribers are connected (ioredis keeps a
// subscriber connection per master), so the count is right, and a message costs one shard instead of
// all of them. Channels published together from one script share the script's hash tag (RedisKeys).
import { isCluster, type RedisClient } from './client.js';

/** Publishes; resolves with how many subscribers received the message (all of them, on a cluster too). */
export function publish(redis: RedisClient, channel: string, message: string): Promise<number> {
  return isCluster(redis) ? (redis.spublish(channel, message) as Promise<number>) : redis.publish(channel, message);
}

/** Subscribes to channels (on a cluster, all of one call's channels must hash to one slot). */
export async function subscribe(sub: RedisClient, ...channels: string[]): Promise<void> {
  if (isCluster(sub)) await sub.ssubscribe(...channels);
  else await sub.subscribe(...channels);
}

export async function unsubscribe(sub: RedisClient, ...channels: string[]): Promise<void> {
  if (isCluster(sub)) await sub.sunsubscribe(...channels);
  else await sub.unsubscribe(...channels);
}

/** Calls `handler` with every message the subscriber connection receives. */
export function onMessage(sub: RedisClient, handler: (channel: string, message: string) => void): void {
  if (isCluster(sub)) sub.on('smessage', handler);
  else sub.on('message', handler);
}
