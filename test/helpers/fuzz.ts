// What the fuzz suite (test/integration/fuzz.test.ts) sends and counts: arbitraries for the strings,
// numbers and shapes an attacker or a careless client sends, a tally of answers per surface, and the
// size of a run (FUZZ_RUNS per property, FUZZ_SEED to replay one).
import fc from 'fast-check';

/** Runs per property: a bounded run inside `npm test`, more with `npm run fuzz`. */
export const FUZZ_RUNS = Number(process.env.FUZZ_RUNS ?? 40);
/** A seed to replay a failed run (fast-check prints it), else a fresh one. */
export const FUZZ_SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
/** A request unanswered this long counts as a hang, and fails the run. */
export const HANG_MS = 15_000;

/** Any text, NUL, lone surrogates and control characters included; sometimes long. */
export const anyText: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 2, arbitrary: fc.constantFrom('', ' ', '\u0000', 'a\u0000b', '\ud800', '\t=1+1', '\r@x', '../../etc/passwd', '%00', "'; DROP TABLE jobs; --", '𝔘𝔫𝔦𝔠𝔬𝔡𝔢', '0x'.padEnd(42, 'f')) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', minLength: 300, maxLength: 5000 }) },
);

/** Numbers of every awkward kind, and things that are not numbers at all. */
export const anyNumber: fc.Arbitrary<unknown> = fc.oneof(
  fc.integer({ min: -3, max: 100 }),
  fc.constantFrom(0, -0, 1e308, -1e308, 2 ** 53, 2 ** 63, 0.1, 1e-7, Number.MAX_SAFE_INTEGER),
  fc.double({ noNaN: true }),
  fc.constantFrom(true, false, null, '1', '0.5', '1e3', [], {}, [1]),
);

/** Any JSON value, nested a little. */
export const anyJson: fc.Arbitrary<unknown> = fc.jsonValue({ maxDepth: 3 });

/** An id: well-formed (of no row), malformed, or one of `known`. */
export function anyId(known: readonly string[] = []): fc.Arbitrary<string> {
  return fc.oneof(
    fc.uuid(),
    fc.constantFrom('----', '-'.repeat(36), 'z'.repeat(36), '0', '%00', 'null', '00000000-0000-0000-0000-000000000000', ...known),
    fc.string({ unit: 'binary-ascii', maxLength: 50 }),
  );
}

/**
 * A path segment as a client might put it in a URL: encoded, so that it reaches the router as sent. A
 * lone surrogate has no UTF-8 form (encodeURIComponent throws): it goes as U+FFFD, as a browser sends it.
 */
export function segment(s: string): string {
  return encodeURIComponent(s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd'));
}

/** A JSON body: usually an object of the route's fields with arbitrary values, sometimes anything else. */
export function anyBody(fields: Record<string, fc.Arbitrary<unknown>>): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight: 6, arbitrary: fc.record(fields, { requiredKeys: [] }) },
    { weight: 1, arbitrary: anyJson },
    { weight: 1, arbitrary: fc.constant(RAW_NOT_JSON) },
  );
}

/** Sent as the raw body text instead of JSON: a body that is not JSON at all. */
export const RAW_NOT_JSON = Symbol('raw body that is not JSON');

/** Answers counted per surface and status class; 5xx and hangs are the failures. */
export class Tally {
  readonly counts: Record<string, Record<string, number>> = {};
  readonly failures: string[] = [];

  record(surface: string, outcome: string): void {
    const s = (this.counts[surface] ??= {});
    s[outcome] = (s[outcome] ?? 0) + 1;
  }

  /** Counts an HTTP answer; a 5xx other than those `allowed5xx` accepts, or a hang, is a failure. */
  http(surface: string, what: string, status: number | 'hang', allowed5xx: (status: number) => boolean = () => false): void {
    this.record(surface, status === 'hang' ? 'hang' : `${Math.floor(status / 100)}xx`);
    if (status === 'hang' || (status >= 500 && !allowed5xx(status))) this.failures.push(`${surface}: ${what} -> ${status}`);
  }

  total(surface: string): number {
    return Object.values(this.counts[surface] ?? {}).reduce((a, b) => a + b, 0);
  }
}
