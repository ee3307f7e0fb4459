// Contribution points (RCP): time is cut into epochs of a configured length; within an epoch, uptime is
// counted in slots (a node seen by a heartbeat during a slot was up for that slot).
import type { Config } from '../config.js';

export interface RcpClock {
  epochSeconds: number;
  uptimeSlotSeconds: number;
}

export function rcpClockFrom(config: Pick<Config, 'RCP_EPOCH_SECONDS' | 'RCP_UPTIME_SLOT_SECONDS'>): RcpClock {
  return { epochSeconds: config.RCP_EPOCH_SECONDS, uptimeSlotSeconds: config.RCP_UPTIME_SLOT_SECONDS };
}

export function epochOf(clock: RcpClock, ms: number): number {
  return Math.floor(ms / (clock.epochSeconds * 1000));
}

/** The uptime slot of `ms` within its epoch. */
export function slotOf(clock: RcpClock, ms: number): number {
  return Math.floor((ms - epochOf(clock, ms) * clock.epochSeconds * 1000) / (clock.uptimeSlotSeconds * 1000));
}

/** Points for a completed job. */
export const POINTS_PER_JOB = 1;

/** Uptime points: one per second up, counted by slots. */
export function uptimePoints(clock: RcpClock, slotsUp: number): number {
  return slotsUp * clock.uptimeSlotSeconds;
}
