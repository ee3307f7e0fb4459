// The node wire protocol, spoken over the io gateway's WebSocket (`/io/ws`) and, for results, its short
// HTTP endpoint (`POST /io/results`). Every message a node sends is signed by the node's key (see
// signatures.ts) and carries a timestamp; heartbeats also carry a nonce, so replays are refused. Jobs the
// gateway sends are signed by the network key, so a node can tell real work from injected work.
import { z } from 'zod';
import { canonicalJson, sha256Hex } from './signatures.js';
import { gpuSchema, modelNameSchema, modelVersionSchema, networkSchema, regionSchema } from './eligibility.js';
import { STREAM_MAX_DELTA_CHARS } from './streaming.js';
import { text } from './wire-strings.js';
import { declaredCapabilitiesSchema } from './capabilities.js';

/**
 * Stop sequences: at most 4 (OpenAI's limit), each at most this many UTF-16 units. A runtime checks every
 * one against its output as it grows, so their length is work a client could otherwise make unbounded.
 */
export const STOP_MAX_SEQUENCES = 4;
export const STOP_MAX_CHARS = 256;

/** A node id or the network's address: a lower-case EVM address. */
export const addressSchema = z.string().regex(/^0x[0-9a-f]{40}$/, 'a lower-case EVM address (0x and 40 hex digits)');
const address = addressSchema;
const signature = z.string().regex(/^0x[0-9a-f]{130}$/, '65-byte hex signature');
const ts = z.number().int().positive(); // milliseconds since the epoch
/**
 * The digest of the network config version a node runs (see network-config.ts), signed with the rest of
 * its registration or heartbeat so that the network can see who is behind. Optional: null or absent
 * when the node holds none yet (or its agent predates configs).
 */
const configDigest = z.string().regex(/^[0-9a-f]{64}$/).nullable().optional();
/** The version in force, as the gateway tells it; a node whose digest differs fetches GET /io/config. */
const configRef = z.object({ version: z.number().int().min(1), digest: z.string().regex(/^[0-9a-f]{64}$/) });
const modelName = modelNameSchema;

/**
 * What a node declares about itself in every registration and heartbeat (signed with the rest), and what
 * the reservation checks (see domain/eligibility.ts). Declared, not measured: the agent cannot prove its
 * GPU; a node that lies about it fails its jobs, and failures cost it its score and its rotation.
 *   network  the network whose jobs it takes (jobs never cross networks)
 *   region   where it runs (null: undeclared; it then serves no job that asks for a region)
 *   gpu      its GPU class and memory in MiB ({name: 'none', memoryMb: 0} without one)
 *   models   each model it serves with the version it runs, at most once per name
 */
const declaredModelsSchema = z
  .array(z.object({ name: modelName, version: modelVersionSchema }))
  .max(256)
  .refine((ms) => new Set(ms.map((m) => m.name)).size === ms.length, 'each model at most once');
const nodeTraits = {
  network: networkSchema,
  region: regionSchema.nullable(),
  gpu: gpuSchema,
  models: declaredModelsSchema,
  /** What its runtime can do beyond plain chat (domain/capabilities.ts); absent: nothing more. */
  capabilities: declaredCapabilitiesSchema.optional(),
};
export type DeclaredModel = z.infer<typeof declaredModelsSchema>[number];

/** Tool and function names, as OpenAI accepts them. */
export const TOOL_NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/** At most this many tools per request (OpenAI's limit), and this many bytes of JSON Schema per tool or response format. */
export const MAX_TOOLS = 128;
export const MAX_SCHEMA_BYTES = 64 * 1024;

/** A JSON Schema, bounded in size: it is compiled by the gateway (ajv) to check answers against it. */
const jsonSchemaObject = z
  .record(z.string(), z.unknown())
  .refine((s) => Buffer.byteLength(JSON.stringify(s), 'utf8') <= MAX_SCHEMA_BYTES, `a schema of at most ${MAX_SCHEMA_BYTES} bytes of JSON`);

/** A call of a tool, as an assistant's answer carries it (and as a later request repeats it). */
export const toolCallSchema = z.object({
  id: text().min(1).max(128),
  type: z.literal('function'),
  function: z.object({ name: z.string().regex(TOOL_NAME_PATTERN), arguments: text().max(256 * 1024) }),
});
export type ToolCall = z.infer<typeof toolCallSchema>;

export const chatMessageSchema = z.object({
  role: z.enum(['system', 'user', 'assistant', 'tool', 'developer']),
  content: text(),
  name: text().max(64).optional(),
  /** An assistant turn's tool calls, repeated by the client in the conversation that answers them. */
  tool_calls: z.array(toolCallSchema).max(MAX_TOOLS).optional(),
  /** A tool turn: the call it answers. */
  tool_call_id: text().min(1).max(128).optional(),
});

export const toolSchema = z.object({
  type: z.literal('function'),
  function: z.object({
    name: z.string().regex(TOOL_NAME_PATTERN, 'a tool name: 1-64 of letters, digits, _ and -'),
    description: text().max(4096).optional(),
    parameters: jsonSchemaObject.optional(),
    /** Arguments must validate against `parameters`; the gateway checks them (domain/job-results.ts). */
    strict: z.boolean().nullish(),
  }),
});
export type Tool = z.infer<typeof toolSchema>;

export const toolChoiceSchema = z.union([
  z.enum(['none', 'auto', 'required']),
  z.object({ type: z.literal('function'), function: z.object({ name: z.string().regex(TOOL_NAME_PATTERN) }) }),
]);
export type ToolChoice = z.infer<typeof toolChoiceSchema>;

export const responseFormatSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('text') }),
  z.object({ type: z.literal('json_object') }),
  z.object({
    type: z.literal('json_schema'),
    json_schema: z.object({
      name: z.string().regex(TOOL_NAME_PATTERN),
      description: text().max(4096).optional(),
      schema: jsonSchemaObject.optional(),
      strict: z.boolean().nullish(),
    }),
  }),
]);
export type ResponseFormat = z.infer<typeof responseFormatSchema>;

/** Per-token log probabilities as OpenAI returns them (`choices[].logprobs.content`). */
const tokenLogprob = z.object({ token: text().max(1024), logprob: z.number().finite().max(0), bytes: z.array(z.number().int().min(0).max(255)).max(4096).nullable() });
export const logprobsSchema = z.object({
  content: z.array(tokenLogprob.extend({ top_logprobs: z.array(tokenLogprob).max(20) })).max(1_000_000).nullable(),
});
export type Logprobs = z.infer<typeof logprobsSchema>;
export type ChatMessage = z.infer<typeof chatMessageSchema>;

/**
 * Job kinds beyond chat (absent: a chat completion, as before kinds existed, so that older tickets and
 * idempotency hashes stay what they were):
 *   completion  OpenAI's legacy `/v1/completions`: the prompt travels as the one message's content;
 *   embedding   `/v1/embeddings`: one message per input, in order; the answer is `output.embeddings`,
 *               one vector per input, and no completion tokens.
 */
export const JOB_KINDS = ['chat', 'completion', 'embedding'] as const;
export type JobKind = (typeof JOB_KINDS)[number];

/** At most this many inputs per embeddings request, and this many dimensions per vector. */
export const EMBEDDING_MAX_INPUTS = 256;
export const EMBEDDING_MAX_DIMENSIONS = 8192;

/** What a node is asked to run: the consumer's request, minus anything about the consumer. */
export const jobRequestSchema = z.object({
  kind: z.enum(['completion', 'embedding']).optional(),
  messages: z.array(chatMessageSchema).min(1),
  /** Embeddings: the length of each vector asked for (models that can shorten theirs); absent: the model's own. */
  dimensions: z.number().int().min(1).max(EMBEDDING_MAX_DIMENSIONS).optional(),
  /** Tools and structured output (domain/capabilities.ts says which nodes may run them), as OpenAI's chat API takes them. */
  tools: z.array(toolSchema).min(1).max(MAX_TOOLS).optional(),
  tool_choice: toolChoiceSchema.optional(),
  parallel_tool_calls: z.boolean().optional(),
  response_format: responseFormatSchema.optional(),
  logprobs: z.boolean().optional(),
  top_logprobs: z.number().int().min(0).max(20).optional(),
  max_tokens: z.number().int().positive(),
  temperature: z.number().min(0).max(2).optional(),
  top_p: z.number().min(0).max(1).optional(),
  stop: z.array(text().max(STOP_MAX_CHARS)).max(STOP_MAX_SEQUENCES).optional(),
  seed: z.number().int().optional(),
  /**
   * The consumer reads the answer as it is generated: the node sends its text as `job_chunk` messages
   * while it runs, then the signed result, whose content must equal the chunks put together.
   */
  stream: z.boolean().optional(),
});
export type JobRequest = z.infer<typeof jobRequestSchema>;

/** The kind of job a request is. */
export function jobKind(request: Pick<JobRequest, 'kind'>): JobKind {
  return request.kind ?? 'chat';
}

export const usageSchema = z.object({
  prompt_tokens: z.number().int().min(0),
  completion_tokens: z.number().int().min(0),
});
export type Usage = z.infer<typeof usageSchema>;

/** A node's answer. Text with a NUL in it is malformed: the gateway fails the attempt as an invalid result. */
export const outputSchema = z.object({
  content: text(),
  finish_reason: z.enum(['stop', 'length', 'content_filter', 'tool_calls']),
  /** The tools the answer calls (finish_reason 'tool_calls'); their names and arguments are billed as output. */
  tool_calls: z.array(toolCallSchema).min(1).max(MAX_TOOLS).optional(),
  logprobs: logprobsSchema.optional(),
  /** An embedding job's answer: one vector per input, in order (content is then ''). */
  embeddings: z.array(z.array(z.number().finite()).min(1).max(EMBEDDING_MAX_DIMENSIONS)).min(1).max(EMBEDDING_MAX_INPUTS).optional(),
});
export type JobOutput = z.infer<typeof outputSchema>;

// ---- node -> gateway -------------------------------------------------------------------------------

export const registerSchema = z.object({
  type: z.literal('register'),
  nodeId: address,
  operator: z.string().uuid(), // the operator account the node is bound to
  /** The operator's consent, when it did not enrol the node's address beforehand (domain/enrolment.ts). */
  enrolmentToken: text().max(2048).optional(),
  challenge: text().min(16).max(128),
  ts,
  agentVersion: text().max(64),
  runtime: text().max(64),
  ...nodeTraits,
  capacity: z.number().int().min(1).max(1024),
  running: z.number().int().min(0),
  configDigest,
  signature,
});

export const heartbeatSchema = z.object({
  type: z.literal('heartbeat'),
  nodeId: address,
  ts,
  nonce: text().min(8).max(64),
  ...nodeTraits,
  capacity: z.number().int().min(1).max(1024),
  running: z.number().int().min(0),
  configDigest,
  signature,
});

export const resultSchema = z.object({
  type: z.literal('result'),
  nodeId: address,
  jobId: z.string().uuid(),
  attempt: z.number().int().min(1),
  ts,
  output: outputSchema,
  outputHash: z.string().regex(/^[0-9a-f]{64}$/),
  usage: usageSchema,
  signature,
});

export const jobErrorSchema = z.object({
  type: z.literal('job_error'),
  nodeId: address,
  jobId: z.string().uuid(),
  attempt: z.number().int().min(1),
  ts,
  message: text().max(2000),
  signature,
});

/**
 * A piece of a streamed answer (jobs whose request has `stream: true`), numbered from 0 within the
 * attempt. Deliberately unsigned, to keep a message per token cheap: it is accepted only over the socket
 * the node registered with its key (never over HTTP), only for an attempt dispatched to that socket and
 * in order, and the signed result authenticates the whole stream after the fact, because its content
 * (covered by outputHash) must equal the chunks put together, or the result is refused as invalid.
 */
export const jobChunkSchema = z.object({
  type: z.literal('job_chunk'),
  nodeId: address,
  jobId: z.string().uuid(),
  attempt: z.number().int().min(1),
  seq: z.number().int().min(0),
  delta: text().min(1).max(STREAM_MAX_DELTA_CHARS),
});

export const nodeMessageSchema = z.discriminatedUnion('type', [registerSchema, heartbeatSchema, resultSchema, jobErrorSchema, jobChunkSchema]);
export type NodeMessage = z.infer<typeof nodeMessageSchema>;
export type RegisterMessage = z.infer<typeof registerSchema>;
export type HeartbeatMessage = z.infer<typeof heartbeatSchema>;
export type ResultMessage = z.infer<typeof resultSchema>;
export type JobErrorMessage = z.infer<typeof jobErrorSchema>;
export type JobChunkMessage = z.infer<typeof jobChunkSchema>;

// ---- gateway -> node -------------------------------------------------------------------------------

export const jobDispatchSchema = z.object({
  type: z.literal('job'),
  jobId: z.string().uuid(),
  attempt: z.number().int().min(1),
  model: modelName,
  request: jobRequestSchema,
  deadline: ts,
  ts,
  signature, // by the network key
});
export type JobDispatch = z.infer<typeof jobDispatchSchema>;

export const gatewayMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('challenge'), challenge: z.string(), network: address }),
  // `config`: the network config version in force (absent before the network has one).
  z.object({ type: z.literal('registered'), nodeId: address, heartbeatIntervalMs: z.number().int(), config: configRef.optional() }),
  z.object({ type: z.literal('heartbeat_ack'), ts, config: configRef.optional() }),
  z.object({ type: z.literal('result_ack'), jobId: z.string(), attempt: z.number().int(), accepted: z.boolean(), reason: z.string().optional() }),
  z.object({ type: z.literal('error'), code: z.string(), message: z.string() }),
  jobDispatchSchema,
  // The job ended while this attempt ran (its client cancelled it): stop it and free the slot. Whatever
  // the node sends for it afterwards is refused as stale. Agents that predate it ignore it (an unknown
  // type fails their schema), and keep the job's slot until their runtime finishes.
  z.object({ type: z.literal('abort'), jobId: z.string().uuid(), attempt: z.number().int().min(1), reason: z.string().max(200) }),
]);
export type GatewayMessage = z.infer<typeof gatewayMessageSchema>;

/** The hash a node signs over its output; the gateway recomputes it before trusting the result. */
export function outputHash(output: JobOutput): string {
  return sha256Hex(canonicalJson(output));
}
