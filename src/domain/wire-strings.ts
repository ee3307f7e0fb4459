// The strings every surface accepts (public /v1, /account, /admin, the node protocol): one schema for
// free text and one for ids, so that no route can forget either.
//
// NUL (U+0000) is refused in every string: PostgreSQL's text cannot hold it ("invalid byte sequence for
// encoding UTF8: 0x00"), so a NUL that got past validation used to fail deep in a transaction as a 500,
// or, in a node's result, leave the job running until its deadline. Refused at the edge, it is a 400 (or,
// from a node, an invalid result) and nothing is half-written.
import { z } from 'zod';

export const NUL_REFUSED = 'must not contain the NUL character (U+0000)';

/** True when `s` holds no NUL character. */
export function hasNoNul(s: string): boolean {
  return !s.includes('\u0000');
}

/** Free text: any string without NUL; chain .min()/.max()/.trim() as with z.string(). */
export function text() {
  return z.string().refine(hasNoNul, NUL_REFUSED);
}

/**
 * An id of a row (account, namespace, key, job, probe): a UUID as RFC 9562 writes it. Checked before any
 * engine sees it: PostgreSQL answers a malformed uuid with an error, not with "no such row".
 */
export const uuidSchema = z.uuid();

/** True when `s` is a well-formed id (uuidSchema). */
export function isUuid(s: string): boolean {
  return uuidSchema.safeParse(s).success;
}
