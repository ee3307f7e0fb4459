// Whether a node's result answers the request it was dispatched: an embedding job must come back with one
// vector per input (of the asked length), a text job with text; a job with tools may call only those
// tools (with JSON arguments, valid against a strict tool's parameters), must call one when tool_choice
// demands it, and no more than one when parallel_tool_calls is false; a JSON-mode answer must be a JSON
// object, and a json_schema answer must validate against the request's schema. A result that does not is
// an invalid result (io/results.service.ts): retried on another node, and counted against the one that
// sent it. An answer cut by max_tokens (finish_reason 'length') is the client's limit, not the node's
// fault: its JSON is not checked.
// The usage side of the same rule: an embedding produces no completion tokens, so a node that claims any
// for one claims what it did not deliver.
import type { ValidateFunction } from 'ajv/dist/2020.js';
import { jobKind, type JobKind, type JobOutput, type JobRequest, type Usage } from './protocol.js';
import { compileSchema, parseJson, schemaViolation } from './json-output.js';

/** What the gateway expects of an attempt's result, from the request it dispatched. */
export interface ResultExpectation {
  kind: JobKind;
  /** Embeddings: the number of inputs (one vector each). */
  inputs: number;
  /** Embeddings: the vector length asked for; null: the model's own (but the same for every vector). */
  dimensions: number | null;
  /** The tools it may call, each with its arguments' validator when it is strict. */
  tools: Map<string, ValidateFunction | null>;
  /** 'none' | 'auto' | 'required', or the one tool it must call. */
  toolChoice: string;
  parallelToolCalls: boolean;
  /** The answer's text must be a JSON object ('object') or validate against a schema. */
  json: 'object' | ValidateFunction | null;
}

export function expectationOf(request: JobRequest): ResultExpectation {
  const tools = new Map<string, ValidateFunction | null>();
  for (const t of request.tools ?? []) {
    const strict = t.function.strict === true && t.function.parameters !== undefined ? compileSchema(t.function.parameters) : null;
    tools.set(t.function.name, strict && 'validate' in strict ? strict.validate : null);
  }
  const choice = request.tool_choice;
  const rf = request.response_format;
  let json: ResultExpectation['json'] = null;
  if (rf?.type === 'json_object') json = 'object';
  if (rf?.type === 'json_schema') {
    const compiled = rf.json_schema.schema ? compileSchema(rf.json_schema.schema) : null;
    json = compiled && 'validate' in compiled ? compiled.validate : 'object';
  }
  return {
    kind: jobKind(request),
    inputs: request.messages.length,
    dimensions: request.dimensions ?? null,
    tools,
    toolChoice: choice === undefined ? (tools.size > 0 ? 'auto' : 'none') : typeof choice === 'string' ? choice : `function:${choice.function.name}`,
    parallelToolCalls: request.parallel_tool_calls !== false,
    json,
  };
}

/**
 * Why `output` does not answer its request, or null when it does. `expected` null: the request is not at
 * hand (a result posted over HTTP after its socket dropped), so only what the output itself shows is checked.
 */
export function resultMismatch(expected: ResultExpectation | null, output: JobOutput, usage: Usage): string | null {
  const vectors = output.embeddings;
  const embedding = expected ? expected.kind === 'embedding' : vectors !== undefined;
  if (!embedding) {
    if (vectors !== undefined) return 'embeddings returned for a text job';
    return expected ? textMismatch(expected, output) : null;
  }
  if (vectors === undefined) return 'an embedding job answered without embeddings';
  if (output.content !== '' || output.tool_calls !== undefined) return 'an embedding job answered with text';
  if (usage.completion_tokens !== 0) return 'completion tokens claimed for an embedding job';
  if (expected && vectors.length !== expected.inputs) return `${vectors.length} embeddings for ${expected.inputs} inputs`;
  const length = expected?.dimensions ?? vectors[0]?.length;
  if (vectors.some((v) => v.length !== length)) return `embeddings of other than ${length} dimensions`;
  return null;
}

function textMismatch(e: ResultExpectation, output: JobOutput): string | null {
  const calls = output.tool_calls ?? [];
  if (calls.length > 0) {
    if (e.toolChoice === 'none') return 'tool calls where the request allowed none';
    if (!e.parallelToolCalls && calls.length > 1) return `${calls.length} tool calls where parallel_tool_calls is false`;
    for (const call of calls) {
      if (!e.tools.has(call.function.name)) return `a call of '${call.function.name}', which is not among the request's tools`;
      if (e.toolChoice.startsWith('function:') && e.toolChoice !== `function:${call.function.name}`) return `a call of '${call.function.name}' where tool_choice named another`;
      const args = parseJson(call.function.arguments);
      if (typeof args !== 'object' || args === null || Array.isArray(args)) return `the arguments of '${call.function.name}' are not a JSON object`;
      const validate = e.tools.get(call.function.name);
      const violation = validate ? schemaViolation(validate, args) : null;
      if (violation !== null) return `the arguments of strict tool '${call.function.name}' do not validate: ${violation}`;
    }
    return null;
  }
  if (e.toolChoice === 'required' || e.toolChoice.startsWith('function:')) return 'no tool call where tool_choice requires one';
  if (e.json === null || output.finish_reason === 'length') return null;
  const value = parseJson(output.content);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'a JSON-mode answer that is not a JSON object';
  const violation = e.json === 'object' ? null : schemaViolation(e.json, value);
  return violation === null ? null : `the answer does not validate against the request's json_schema: ${violation}`;
}

/** The text an answer delivers and is billed for: its content, and the names and arguments of its tool calls. */
export function deliveredText(output: JobOutput): string {
  if (!output.tool_calls) return output.content;
  return output.content + output.tool_calls.map((c) => c.function.name + c.function.arguments).join('');
}
