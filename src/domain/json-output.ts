// JSON answers checked against the schema a request gave: `response_format: {type: json_schema}` and the
// `parameters` of a strict tool. A node's answer that does not validate is an invalid result (retried on
// another node; domain/job-results.ts), a guarantee the client gets without validating it itself.
//
// Schemas come from clients: ajv compiles them to code once each (cached by content), `$schema` dropped
// (clients send draft-07 and 2020-12 alike; ajv's 2020 dialect reads both for the keywords structured
// output uses), unknown keywords and formats ignored rather than refused (strict: false), as model servers
// do. Their size is bounded at the edge (protocol.ts MAX_SCHEMA_BYTES); a pathological `pattern` can still
// cost the validator time, which is bounded by the answer's own size.
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { canonicalJson, sha256Hex } from './signatures.js';

/** Made on first use: building it compiles ajv's meta-schemas, which processes that never check JSON (the CLI) need not pay. */
let ajv: Ajv2020 | null = null;

/** Compiled validators by schema digest; cleared wholesale past the bound (a bound, not an eviction policy). */
const compiled = new Map<string, ValidateFunction>();
const MAX_COMPILED = 1_000;

/** A compiled schema, or the reason it cannot be compiled (a 400 at accept). */
export function compileSchema(schema: Record<string, unknown>): { validate: ValidateFunction } | { error: string } {
  const { $schema: _dialect, ...body } = schema;
  const key = sha256Hex(canonicalJson(body));
  const hit = compiled.get(key);
  if (hit) return { validate: hit };
  try {
    ajv ??= new Ajv2020({ strict: false, allErrors: false, validateFormats: false, logger: false });
    const validate = ajv.compile(body);
    if (compiled.size >= MAX_COMPILED) compiled.clear();
    compiled.set(key, validate);
    return { validate };
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
}

/** Parses `text` as JSON; undefined when it is not JSON. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** Why `value` does not validate against `validate`, or null when it does. */
export function schemaViolation(validate: ValidateFunction, value: unknown): string | null {
  if (validate(value)) return null;
  const e = validate.errors?.[0];
  return e ? `${e.instancePath || '(root)'} ${e.message ?? 'is invalid'}` : 'does not match the schema';
}
