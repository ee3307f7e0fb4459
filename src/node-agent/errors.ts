/** An error's message for logs and problems, with its cause's when it has one (fetch's "fetch failed" says little alone). */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.cause instanceof Error ? `${err.message}: ${err.cause.message}` : err.message;
  return String(err);
}
