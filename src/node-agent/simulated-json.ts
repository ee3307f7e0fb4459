// SIMULATED structured output, for the simulated runtime (runtime.simulated.ts): a value that validates
// against a JSON Schema, derived from a seed so that the same request always gets the same value. It
// fills every property an object schema lists, picks the first choice of an enum, anyOf or oneOf (the
// first that is not null), honours minimum/maximum, minItems/maxItems and minLength/maxLength, local
// `$ref`s (#/$defs/..., #/definitions/...) and common string formats. `pattern` is not honoured: a schema
// that needs one gets a value that may not match it. It models nothing: the values mean nothing.
import { sha256Hex } from '../domain/signatures.js';

const WORDS = ['alpha', 'bravo', 'cedar', 'delta', 'ember', 'fjord', 'grove', 'harbor', 'iris', 'juniper', 'kestrel', 'lumen', 'meadow', 'nimbus', 'orchid', 'quartz'] as const;
const MAX_DEPTH = 8;

type Schema = Record<string, unknown>;

/** A deterministic value valid against `schema` (see the file comment for what is honoured). */
export function fillSchema(schema: Schema, seed: string): unknown {
  return new Filler(schema, seed).fill(schema, 0, '');
}

class Filler {
  constructor(
    private readonly root: Schema,
    private readonly seed: string,
  ) {}

  /** A number in [0, n) drawn from the seed and the value's path. */
  private pick(path: string, n: number): number {
    return n <= 1 ? 0 : parseInt(sha256Hex(`${this.seed}:${path}`).slice(0, 8), 16) % n;
  }

  fill(schema: unknown, depth: number, path: string): unknown {
    if (!isSchema(schema) || depth > MAX_DEPTH) return null;
    const s = this.resolve(schema);
    if ('const' in s) return s.const;
    if (Array.isArray(s.enum) && s.enum.length > 0) return s.enum[0];
    for (const key of ['anyOf', 'oneOf'] as const) {
      const options: unknown = s[key];
      if (Array.isArray(options) && options.length > 0) {
        const choices = options as unknown[];
        const chosen: unknown = choices.find((o) => !(isSchema(o) && o.type === 'null')) ?? choices[0];
        return this.fill({ ...withoutKey(s, key), ...(isSchema(chosen) ? this.resolve(chosen) : {}) }, depth + 1, path);
      }
    }
    if (Array.isArray(s.allOf)) {
      const merged: Schema = withoutKey(s, 'allOf');
      for (const part of s.allOf) if (isSchema(part)) mergeInto(merged, this.resolve(part));
      return this.fill(merged, depth + 1, path);
    }
    const types: unknown = s.type;
    const type: unknown = Array.isArray(types) ? ((types as unknown[]).find((t) => t !== 'null') ?? (types as unknown[])[0]) : types;
    switch (type ?? (isSchema(s.properties) ? 'object' : s.items !== undefined ? 'array' : 'string')) {
      case 'object': {
        const out: Record<string, unknown> = {};
        const props = isSchema(s.properties) ? s.properties : {};
        for (const [name, prop] of Object.entries(props)) out[name] = this.fill(prop, depth + 1, `${path}/${name}`);
        return out;
      }
      case 'array': {
        const min = num(s.minItems) ?? 1;
        const max = num(s.maxItems) ?? Math.max(min, 2);
        const count = Math.min(Math.max(min, 1), max);
        return Array.from({ length: count }, (_, i) => this.fill(Array.isArray(s.prefixItems) ? (s.prefixItems[i] ?? s.items) : s.items, depth + 1, `${path}/${i}`));
      }
      case 'integer':
      case 'number': {
        const lo = Math.max(num(s.minimum) ?? -Infinity, (num(s.exclusiveMinimum) ?? -Infinity) + 1);
        const hi = Math.min(num(s.maximum) ?? Infinity, (num(s.exclusiveMaximum) ?? Infinity) - 1);
        const from = Number.isFinite(lo) ? Math.ceil(lo) : Number.isFinite(hi) ? Math.floor(hi) - 100 : 0;
        const to = Number.isFinite(hi) ? Math.floor(hi) : from + 100;
        return from + this.pick(path, Math.max(1, to - from + 1));
      }
      case 'boolean':
        return this.pick(path, 2) === 1;
      case 'null':
        return null;
      default:
        return this.string(s, path);
    }
  }

  private string(s: Schema, path: string): string {
    switch (s.format) {
      case 'date-time':
        return '2026-01-01T00:00:00Z';
      case 'date':
        return '2026-01-01';
      case 'time':
        return '00:00:00Z';
      case 'email':
        return 'simulated@example.com';
      case 'uri':
      case 'url':
        return 'https://example.com/simulated';
      case 'uuid':
        return '00000000-0000-4000-8000-000000000000';
    }
    let text: string = WORDS[this.pick(path, WORDS.length)] ?? 'alpha';
    const min = num(s.minLength) ?? 0;
    const max = num(s.maxLength) ?? Infinity;
    while (text.length < min) text += ` ${text}`;
    return text.slice(0, Math.max(min, Math.min(text.length, max)));
  }

  private resolve(s: Schema): Schema {
    let current = s;
    for (let hops = 0; typeof current.$ref === 'string' && hops < MAX_DEPTH; hops++) {
      const ref = current.$ref;
      if (!ref.startsWith('#')) break;
      let target: unknown = this.root;
      for (const part of ref.slice(1).split('/').filter(Boolean)) target = isSchema(target) ? target[part.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined;
      if (!isSchema(target)) break;
      current = { ...withoutKey(current, '$ref'), ...target };
    }
    return current;
  }
}

function isSchema(v: unknown): v is Schema {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function withoutKey(s: Schema, key: string): Schema {
  const { [key]: _dropped, ...rest } = s;
  return rest;
}

function mergeInto(target: Schema, part: Schema): void {
  for (const [k, v] of Object.entries(part)) {
    if (k === 'properties' && isSchema(v) && isSchema(target.properties)) target.properties = { ...target.properties, ...v };
    else if (k === 'required' && Array.isArray(v) && Array.isArray(target.required)) target.required = [...(target.required as unknown[]), ...(v as unknown[])];
    else target[k] = v;
  }
}
