// The fast tier's stand-in for a database (docs/testing.md, "Fast tier"): a fake store keeps its tables
// in `state` and runs each transaction through `transaction`, which gives the two guarantees services lean
// on: all or nothing (a transaction that throws leaves `state` as it found it) and one at a time (like the
// row locks the engine takes, so read-then-write inside a transaction is never interleaved).
// `failNext` makes the next call of a named operation throw, for the paths where an engine fails mid-way.
export class FakeDatabase<S> {
  private queue: Promise<unknown> = Promise.resolve();
  private readonly failures = new Map<string, Error>();
  /** Operations called, in order (a test can assert what was, or was not, reached). */
  readonly calls: string[] = [];

  constructor(public state: S) {}

  transaction<T>(fn: () => Promise<T>): Promise<T> {
    const turn = this.queue.then(async () => {
      const before = structuredClone(this.state);
      try {
        return await fn();
      } catch (err) {
        this.state = before;
        throw err;
      }
    });
    this.queue = turn.catch(() => undefined);
    return turn;
  }

  /** Records the call of `operation` and throws if a failure was set for it. */
  call(operation: string): void {
    this.calls.push(operation);
    const failure = this.failures.get(operation);
    if (failure) {
      this.failures.delete(operation);
      throw failure;
    }
  }

  failNext(operation: string, error = new Error(`${operation} failed (fake)`)): void {
    this.failures.set(operation, error);
  }
}
