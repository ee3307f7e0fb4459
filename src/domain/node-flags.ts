// Node flags: what keeps a node out of rotation. Pure data and rules; storage is in postgres/ and redis/.
export interface NodeFlags {
  paused: boolean;
  frozen: boolean;
  shadowBanned: boolean;
  /** Milliseconds since the epoch; null: no cooldown. */
  cooldownUntil: number | null;
}

export const NO_FLAGS: NodeFlags = { paused: false, frozen: false, shadowBanned: false, cooldownUntil: null };

/** Whether a node with these flags may be given new jobs at `now`. */
export function routable(f: NodeFlags, now = Date.now()): boolean {
  return !f.paused && !f.frozen && !f.shadowBanned && (f.cooldownUntil === null || f.cooldownUntil <= now);
}
