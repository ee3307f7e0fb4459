// Fast tier (docs/testing.md): StreamRelay's ordering and ending rules on in-memory fakes of its store,
// the attempts' streams, wake-ups and job events. The same relay on the real engines:
// test/integration/streaming.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StreamRelay, type StreamEvent } from '../../src/cloud/stream-relay.service.js';
import { newJobId } from '../../src/domain/job-ids.js';
import type { JobOutput } from '../../src/domain/protocol.js';
import { jobRowOf } from '../../src/postgres/jobs.repository.js';
import { FakeJobEvents } from '../fakes/job-events.js';
import { FakePayloads } from '../fakes/inference.store.js';
import { FakeJobStreams, FakeStreamRelayStore, FakeStreamWakeups } from '../fakes/stream-relay.store.js';

function setUp() {
  const store = new FakeStreamRelayStore();
  const wakeups = new FakeStreamWakeups();
  const streams = new FakeJobStreams(wakeups);
  const events = new FakeJobEvents();
  const payloads = new FakePayloads();
  const errors: unknown[] = [];
  const relay = new StreamRelay({ store, streams, wakeups, events, payloads, logger: { error: (o: unknown) => errors.push(o) } });
  const accepted = jobRowOf({
    id: newJobId(),
    namespaceId: 'ns-1',
    apiKeyId: 'key-1',
    model: 'llama',
    maxAttempts: 3,
    maxTokens: 100,
    promptTokensBound: 10,
    holdMicro: 1_000,
    inputPriceMicro: 1,
    outputPriceMicro: 1,
    minChargeMicro: 0,
    deadlineAt: new Date(Date.now() + 60_000),
  });
  store.put(accepted);
  return { store, wakeups, streams, events, payloads, errors, relay, accepted };
}

type Fixture = ReturnType<typeof setUp>;

/** Runs the relay to its end; `onEvent` acts on each event as it comes (the node going on, the job ending). */
async function follow(f: Fixture, onEvent: (e: StreamEvent, seen: StreamEvent[]) => void = () => undefined, opts: { until?: number; signal?: AbortSignal } = {}): Promise<StreamEvent[]> {
  const seen: StreamEvent[] = [];
  const signal = opts.signal ?? new AbortController().signal;
  for await (const e of f.relay.follow(f.accepted, opts.until ?? Date.now() + 10_000, signal, f.events.watchFinished(f.accepted.id))) {
    seen.push(e);
    onEvent(e, seen);
  }
  return seen;
}

const texts = (events: StreamEvent[]) => events.filter((e) => e.kind === 'delta').map((e) => (e as { text: string }).text);

function completed(f: Fixture, attempt: number, output: JobOutput): void {
  f.store.update(f.accepted.id, { status: 'completed', attempt, finished_at: new Date(), charged_micro: 5 });
  f.events.emit({ kind: 'finished', jobId: f.accepted.id, status: 'completed', completed: { attempt, output, usage: { prompt_tokens: 3, completion_tokens: 2 }, chargedMicro: 5 } });
}

test('the running attempt\'s chunks reach the client in order, once it is recorded as the client\'s; the stored rest ends the answer', async () => {
  const f = setUp();
  f.store.update(f.accepted.id, { status: 'running', attempt: 1 });
  f.streams.append(f.accepted.id, 1, 'Hel', 'lo');
  const events = await follow(f, (e, seen) => {
    if (texts(seen).join('') === 'Hello') {
      f.streams.append(f.accepted.id, 1, ',');
      completed(f, 1, { content: 'Hello, world', finish_reason: 'stop' });
    }
  });
  assert.deepEqual(texts(events), ['Hel', 'lo', ',', ' world']);
  const end = events.at(-1)!;
  assert.equal(end.kind, 'completed');
  assert.equal(end.kind === 'completed' && end.job.charged_micro, 5);
  assert.equal(f.store.db.state.streamed.get(f.accepted.id), 1, 'the client was committed to attempt 1 before its first chunk');
  assert.ok(f.store.db.calls.indexOf('commitStreamedAttempt') >= 0);
});

test('chunks of an attempt that ended before the client was committed to it are never forwarded; the retry\'s are', async () => {
  const f = setUp();
  // Attempt 1 streamed, then failed (the row is queued again for attempt 2): its text must not reach the client.
  f.streams.append(f.accepted.id, 1, 'WRONG ');
  f.store.update(f.accepted.id, { status: 'queued', attempt: 1 });
  setTimeout(() => {
    f.store.update(f.accepted.id, { status: 'running', attempt: 2 });
    f.streams.append(f.accepted.id, 2, 'Right');
  }, 10);
  const events = await follow(f, (e) => {
    if (e.kind === 'delta' && e.text === 'Right') completed(f, 2, { content: 'Right!', finish_reason: 'stop' });
  });
  assert.deepEqual(texts(events), ['Right', '!']);
  assert.equal(f.store.db.state.streamed.get(f.accepted.id), 2);
});

test('a node that did not stream: the whole stored answer is one chunk, then the end', async () => {
  const f = setUp();
  setTimeout(() => completed(f, 1, { content: 'all at once', finish_reason: 'length' }), 5);
  const events = await follow(f);
  assert.deepEqual(texts(events), ['all at once']);
  const end = events.at(-1)!;
  assert.equal(end.kind === 'completed' && end.finishReason, 'length');
});

test('a completed job whose event carried no answer is finished from the stored output; none stored: output_expired', async () => {
  const f = setUp();
  f.store.update(f.accepted.id, { status: 'completed', attempt: 1, finished_at: new Date() });
  f.payloads.docs.set(f.accepted.id, { _id: f.accepted.id, namespaceId: 'ns-1', model: 'llama', results: { '1': { output: { content: 'stored', finish_reason: 'stop' }, usage: { prompt_tokens: 1, completion_tokens: 1 } } }, trace: [], createdAt: new Date(), expireAt: new Date() });
  setTimeout(() => f.events.emit({ kind: 'finished', jobId: f.accepted.id }), 5); // an older sender: no status
  assert.deepEqual(texts(await follow(f)), ['stored']);
  const g = setUp();
  g.store.update(g.accepted.id, { status: 'completed', attempt: 1, finished_at: new Date() });
  setTimeout(() => g.events.emit({ kind: 'finished', jobId: g.accepted.id }), 5);
  const end = (await follow(g)).at(-1)!;
  assert.equal(end.kind === 'failed' && end.error.code, 'output_expired');
});

test('a stored answer that does not continue what was streamed ends in an error, not in a completion', async () => {
  const f = setUp();
  f.store.update(f.accepted.id, { status: 'running', attempt: 1 });
  f.streams.append(f.accepted.id, 1, 'abc');
  const events = await follow(f, (e) => {
    if (e.kind === 'delta') completed(f, 1, { content: 'xyz', finish_reason: 'stop' });
  });
  const end = events.at(-1)!;
  assert.equal(end.kind === 'failed' && end.error.code, 'stream_inconsistent');
  assert.equal(f.errors.length, 1);
});

test('a job that expires after part of the answer reached the client: the rest of the stream, then the error', async () => {
  const f = setUp();
  f.store.update(f.accepted.id, { status: 'running', attempt: 1 });
  f.streams.append(f.accepted.id, 1, 'part one');
  const events = await follow(f, (e) => {
    if (e.kind !== 'delta' || e.text !== 'part one') return;
    // Once the relay waits: the last chunk and the expiry come together, so that it learns of the expiry
    // with a chunk still unread (the part the client was charged for includes it).
    setTimeout(() => {
      f.streams.append(f.accepted.id, 1, ', part two');
      f.store.update(f.accepted.id, { status: 'expired', finished_at: new Date(), error_code: 'deadline_exceeded', error_message: 'late' });
      f.events.emit({ kind: 'finished', jobId: f.accepted.id, status: 'expired', error: { code: 'deadline_exceeded', message: 'late' } });
    }, 20);
  });
  assert.deepEqual(texts(events), ['part one', ', part two']);
  const end = events.at(-1)!;
  assert.deepEqual(end.kind === 'failed' && [end.error.kind, end.error.code], ['job_expired', 'deadline_exceeded']);
});

test('a job that fails before any chunk reached the client: the error alone', async () => {
  const f = setUp();
  f.streams.append(f.accepted.id, 1, 'never shown');
  f.store.update(f.accepted.id, { status: 'failed', attempt: 1, finished_at: new Date(), error_code: 'attempts_exhausted', error_message: 'no' });
  const events = await follow(f);
  assert.deepEqual(texts(events), []);
  assert.equal(events.length, 1);
  assert.equal(events[0]!.kind, 'failed');
});

test('past its time the relay gives up with an error naming the job to poll', { timeout: 5_000 }, async () => {
  const f = setUp();
  const events = await follow(f, undefined, { until: Date.now() - 1 });
  const end = events.at(-1)!;
  assert.equal(end.kind === 'failed' && end.error.code, 'stream_timeout');
  assert.match(end.kind === 'failed' ? end.error.message : '', new RegExp(`GET /v1/jobs/${f.accepted.id}`));
});

test('a client that leaves stops the relay only: nothing more is sent, its watches are closed', async () => {
  const f = setUp();
  f.store.update(f.accepted.id, { status: 'running', attempt: 1 });
  f.streams.append(f.accepted.id, 1, 'first');
  const left = new AbortController();
  const events = await follow(f, () => {
    left.abort();
    f.streams.append(f.accepted.id, 1, 'second');
  }, { signal: left.signal });
  assert.deepEqual(texts(events), ['first']);
  assert.equal(f.events.listening(f.accepted.id), 0);
  assert.equal(f.wakeups.open(f.accepted.id), 0);
  assert.equal(f.store.db.state.jobs.get(f.accepted.id)!.status, 'running', 'the job runs on');
});

test('two readers of one job: the attempt the first was committed to is the only one the second may read', async () => {
  const f = setUp();
  f.store.update(f.accepted.id, { status: 'running', attempt: 1 });
  assert.equal(await f.store.commitStreamedAttempt(f.accepted.id, 1), true);
  assert.equal(await f.store.commitStreamedAttempt(f.accepted.id, 1), true, 'a second reader of the same attempt');
  f.store.update(f.accepted.id, { status: 'running', attempt: 2 });
  assert.equal(await f.store.commitStreamedAttempt(f.accepted.id, 2), false, 'never another attempt once one reached a client');
});
