// Capabilities: what a node's runtime can do beyond plain chat, declared in its registration and every
// heartbeat (signed with the rest), and checked at reservation: a job that needs one runs only on nodes
// that declared it (redis/readiness.lua.ts `candidate`), and is refused at accept when no node online
// has it. A plain chat job needs none, so its reservation checks nothing more than before.
//
//   completions   OpenAI's legacy /v1/completions           embeddings   /v1/embeddings
//   tools         tools, tool_choice, parallel_tool_calls   logprobs     logprobs, top_logprobs
//   json_object   response_format {type: json_object}       json_schema  response_format {type: json_schema}
import { z } from 'zod';
import type { JobRequest } from './protocol.js';
import type { Placement } from './eligibility.js';

export const CAPABILITIES = ['completions', 'embeddings', 'tools', 'json_object', 'json_schema', 'logprobs'] as const;
export type Capability = (typeof CAPABILITIES)[number];
export const capabilitySchema = z.enum(CAPABILITIES);

/** What a node declares: each capability at most once. */
export const declaredCapabilitiesSchema = z
  .array(capabilitySchema)
  .max(CAPABILITIES.length)
  .refine((cs) => new Set(cs).size === cs.length, 'each capability at most once');

/** The capabilities a node must have declared to run `request`, in CAPABILITIES order (empty for plain chat). */
export function requiredCapabilities(request: JobRequest): Capability[] {
  const needs = new Set<Capability>();
  if (request.kind === 'completion') needs.add('completions');
  if (request.kind === 'embedding') needs.add('embeddings');
  if (request.tools !== undefined && request.tools.length > 0) needs.add('tools');
  if (request.response_format?.type === 'json_object') needs.add('json_object');
  if (request.response_format?.type === 'json_schema') needs.add('json_schema');
  if (request.logprobs === true) needs.add('logprobs');
  return CAPABILITIES.filter((c) => needs.has(c));
}

/** `placement` with what `request` needs of its node (the placement itself, untouched, for plain chat). */
export function withNeeds(placement: Placement, request: JobRequest): Placement {
  const needs = requiredCapabilities(request);
  return needs.length === 0 ? placement : { ...placement, needs };
}
