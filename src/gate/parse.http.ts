// Request validation for the gate's HTTP surfaces (admin and account APIs): a zod schema, and its first
// problem as a 400 naming the field, in the API's error shape.
import { z } from 'zod';
import { errors } from '../errors.js';

export const uuid = z.string().uuid();

export function parse<T>(schema: z.ZodType<T>, value: unknown): T {
  const r = schema.safeParse(value);
  if (!r.success) throw errors.invalidInput(r.error.issues, 'invalid request');
  return r.data;
}
