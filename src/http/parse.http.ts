// Request validation for the gate's HTTP surfaces (admin and account APIs): a zod schema, and its first
// problem as a 400 naming the field, in the API's error shape.
import { z } from 'zod';
import { errors } from '../errors.js';

export { uuidSchema as uuid } from '../domain/wire-strings.js';

/**
 * An amount of credits: a JSON number, or a decimal string ("0.5"); never a boolean, null or array, which
 * a coercion would have read as 1, 0 or a number.
 */
export const creditAmount = z
  .union([z.number(), z.string().regex(/^\d{1,12}(\.\d{1,6})?$/, 'a decimal number of credits').transform(Number)])
  .pipe(z.number().positive());

export function parse<T>(schema: z.ZodType<T>, value: unknown): T {
  const r = schema.safeParse(value);
  if (!r.success) throw errors.invalidInput(r.error.issues, 'invalid request');
  return r.data;
}
