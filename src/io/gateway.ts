// The io gateway: holds node WebSockets (`GET /io/ws`) and takes results over short HTTP
// (`POST /io/results`, for a node whose socket dropped while it worked: io/results.http.ts).
//
// Session: the gateway sends a one-time challenge; the node answers with a `register` message signed by
// its key over that challenge (proving the key), naming its operator account; then signed heartbeats keep
// its presence in Redis. Jobs reach this instance over Redis pub/sub (see redis/job-events.ts) and go
// down the node's socket; the gateway remembers which attempts each socket holds, so a disconnect fails
// them at once instead of after the attempt timeout.
//
// Network config: `registered` and every `heartbeat_ack` name the version in force (version and digest);
// a node whose own digest differs fetches it from `GET /io/config` (public: the network's signature, not
// this endpoint, is what a node trusts) and reports the digest it runs in its signed heartbeats, which
// the gateway records in Redis when it changes (admin: GET /admin/network-config/adoption). The
// participation rules of the version in force are checked at registration and at every heartbeat: a
// node they no longer accept is told why and disconnected.
//
// Streaming: for a streamed job the node sends its text as `job_chunk` messages before its result. The
// gateway appends them, in order, to the attempt's Redis Stream (redis/job-streams.ts), from which the
// cloud instance holding the client relays them; the result is then checked against what was streamed
// (io/results.service.ts). A job's chunks and its result (or job_error) are handled one at a time, in
// the order they arrived, so the check always sees every chunk sent before the result. The chunks'
// handling is io/chunk-stream.ts; a socket's state is io/gateway-session.ts; the HTTP route for results
// is io/results.http.ts.
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type {} from '@fastify/websocket'; // route option types for `websocket: true`
import type { WebSocket } from 'ws';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Config } from '../config.js';
import { AppError, type ErrorCode } from '../errors.js';
import { sendNodeError } from '../http/errors.http.js';
import { nodeMessageSchema, type HeartbeatMessage, type RegisterMessage, type ResultMessage } from '../domain/protocol.js';
import type { Address } from '../domain/signatures.js';
import { verifyMessageAsync } from '../domain/verify-pool.js';
import type { Db } from '../postgres/db.js';
import { bindNode, type BindResult } from '../postgres/nodes.repository.js';
import { enrolmentTokenProblem } from '../domain/enrolment.js';
import type { PresenceRepository } from '../redis/presence.repository.js';
import type { ReplayGuard } from '../redis/replay-guard.repository.js';
import type { UptimeRepository } from '../redis/uptime.repository.js';
import { epochOf, slotOf, type RcpClock } from '../domain/rcp.js';
import type { DispatchEnvelope, JobEvents } from '../redis/job-events.js';
import type { JobStreams } from '../redis/job-streams.js';
import { stageSince } from '../metrics/job-stages.js';
import { streamMaxChunks } from '../domain/streaming.js';
import type { ResultsService } from './results.service.js';
import { expectationOf } from '../domain/job-results.js';
import type { CurrentNetworkConfig } from '../network/network-config.service.js';
import type { NodeConfigDigests } from '../redis/node-config-digests.repository.js';
import { participationProblem } from '../domain/network-config.js';
import { capacityCeilings, type CapacityRules } from '../domain/capacity.js';
import type { JobLog } from '../domain/job-log.js';
import { attemptKey, forgetAttempt, inJobOrder, reject, send, type Session } from './gateway-session.js';
import { ChunkStreams } from './chunk-stream.js';
import { resultsRoute } from './results.http.js';
import { NO_NODE_STATS, type NodeStatsSink } from '../domain/node-stats.js';

export interface GatewayDeps {
  config: Config;
  db: Db;
  presence: PresenceRepository;
  replay: ReplayGuard;
  uptime: UptimeRepository;
  rcpClock: RcpClock;
  events: JobEvents;
  results: ResultsService;
  streams: JobStreams;
  networkAddress: Address;
  networkConfig: CurrentNetworkConfig;
  nodeConfigDigests: NodeConfigDigests;
  instanceId: string;
  logger: Logger;
  /** The job log: an attempt's first streamed token (written behind). */
  jobLog?: JobLog;
  /** Node stats: the declared load of each accepted registration and heartbeat (clamped there). */
  nodeStats?: NodeStatsSink;
}

const REGISTER_TIMEOUT_MS = 10_000;
/** The largest frame a registered node may send (the WebSocket server's maxPayload, app.ts). */
export const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
/** What names an attempt in a node message that failed its schema: enough to blame the node for it. */
const attemptNamed = z.object({ type: z.enum(['result', 'job_chunk', 'job_error']), jobId: z.string(), attempt: z.number() });



export class Gateway {
  private readonly sessions = new Map<string, Session>();
  /** Open node sockets on this instance per client address (IO_CONNECTIONS_PER_ADDRESS). */
  private readonly socketsByAddress = new Map<string, number>();
  private readonly idleSweep: NodeJS.Timeout;
  private readonly chunkStreams: ChunkStreams;

  constructor(private readonly d: GatewayDeps) {
    this.chunkStreams = new ChunkStreams({ streams: d.streams, results: d.results, jobLog: d.jobLog });
    d.events.onDispatch((job) => {
      this.deliver(job).catch((err: unknown) => d.logger.error({ err, jobId: job.jobId }, 'io: dispatch failed'));
    });
    d.events.onCancelled((jobId) => this.abortOnNode(jobId));
    // A registered node sends a heartbeat every interval; one silent for a whole TTL (its presence has
    // expired) holds a socket for nothing, or is trickling a frame byte by byte: closed either way.
    this.idleSweep = setInterval(() => this.closeIdle(), Math.max(250, Math.floor(d.networkConfig.heartbeat().ttlMs / 4)));
    this.idleSweep.unref();
  }

  /**
   * A job was cancelled while running: tell the node that runs it here (if any) to stop. Cancellations are
   * rare, so the sockets are scanned rather than indexed by job on every dispatch. The slot was already
   * returned by the cancellation; the node's job_error that follows is refused as stale.
   */
  private abortOnNode(jobId: string): void {
    for (const session of this.sessions.values()) {
      const attempt = session.inflight.get(jobId);
      if (!attempt) continue;
      send(session.socket, { type: 'abort', jobId, attempt: attempt.attempt, reason: 'cancelled by its client' });
      this.d.logger.info({ jobId, attempt: attempt.attempt, node: session.nodeId }, 'io: told the node to abort a cancelled job');
    }
  }

  get connectedNodes(): number {
    return this.sessions.size;
  }

  routes(app: FastifyInstance): void {
    app.get('/io/ws', { websocket: true }, (socket, request) => this.accept(socket, request.ip, request.raw.socket));
    // The network config in force: document, digest and the network key's signature over the digest.
    app.get('/io/config', async (_request, reply) => {
      const current = this.d.networkConfig.current();
      if (!current) return sendNodeError(reply, new AppError('no_config', 'The network has no config version yet; retry shortly.'));
      const { version, digest, document, signature } = current;
      return reply.header('cache-control', 'no-cache').send({ version, digest, document, signature, network: this.d.networkAddress });
    });
    resultsRoute(app, this.d.results, MAX_MESSAGE_BYTES);
  }

  /** Closes every node socket (shutdown). Nodes reconnect to another instance. */
  closeAll(): void {
    clearInterval(this.idleSweep);
    for (const s of this.sessions.values()) s.socket.close(1001, 'gateway shutting down');
  }

  private closeIdle(): void {
    const silentSince = Date.now() - this.d.networkConfig.heartbeat().ttlMs;
    for (const s of this.sessions.values()) if (s.lastMessageAt < silentSince) s.socket.close(4004, 'no message within the heartbeat TTL');
  }

  /**
   * A new node socket. Until it registers it is a stranger's: it may send at most
   * IO_UNREGISTERED_MAX_BYTES in all (counted on the TCP socket as bytes arrive, so a large frame is cut
   * off before it is whole, let alone parsed), and each address may hold at most IO_CONNECTIONS_PER_ADDRESS
   * sockets on this instance. A registered node may send frames up to MAX_MESSAGE_BYTES.
   */
  private accept(socket: WebSocket, address: string, tcp: Socket): void {
    const open = (this.socketsByAddress.get(address) ?? 0) + 1;
    this.socketsByAddress.set(address, open);
    socket.once('close', () => {
      const left = (this.socketsByAddress.get(address) ?? 1) - 1;
      if (left > 0) this.socketsByAddress.set(address, left);
      else this.socketsByAddress.delete(address);
    });
    if (open > this.d.config.IO_CONNECTIONS_PER_ADDRESS) {
      socket.close(1008, 'too many connections from this address');
      return;
    }
    let unregisteredBytes = 0;
    const countUnregistered = (chunk: Buffer) => {
      unregisteredBytes += chunk.length;
      if (unregisteredBytes > this.d.config.IO_UNREGISTERED_MAX_BYTES) socket.terminate();
    };
    // First in line, so that the count is made before the WebSocket parser sees the bytes.
    tcp.prependListener('data', countUnregistered);

    const challenge = randomBytes(32).toString('hex');
    let session: Session | null = null;
    const registerTimer = setTimeout(() => socket.close(4001, 'registration timeout'), REGISTER_TIMEOUT_MS);
    send(socket, { type: 'challenge', challenge, network: this.d.networkAddress });

    // Until the socket is registered its frames are handled one at a time, in order: a frame that comes
    // while a registration is in flight (a second register, say) must see that registration's outcome,
    // or it would register this very socket a second time and close it as "replaced", leaving the node's
    // presence in Redis with no socket behind it.
    let unregistered: Promise<void> = Promise.resolve();
    socket.on('message', (data, isBinary) => {
      const raw = isBinary ? null : (data as Buffer).toString('utf8');
      const handle = () =>
        this.onMessage(socket, raw, challenge, session)
          .then((s) => {
            if (s && !session) {
              session = s;
              clearTimeout(registerTimer);
              tcp.off('data', countUnregistered);
            }
          })
          .catch((err: unknown) => {
            this.d.logger.error({ err }, 'io: message handling failed');
            send(socket, { type: 'error', code: 'internal' satisfies ErrorCode, message: 'internal error' });
          });
      if (session) void handle();
      else unregistered = unregistered.then(handle);
    });
    socket.on('close', () => {
      clearTimeout(registerTimer);
      tcp.off('data', countUnregistered);
      if (session) this.onClose(session).catch((err: unknown) => this.d.logger.error({ err }, 'io: close handling failed'));
    });
    socket.on('error', () => undefined); // 'close' follows
  }

  /** Handles one frame; returns the session once registration succeeded. */
  private async onMessage(socket: WebSocket, raw: string | null, challenge: string, session: Session | null): Promise<Session | null> {
    if (raw === null || raw.length > MAX_MESSAGE_BYTES) return reject(socket, 'invalid_message', 'text JSON frames only');
    if (session) session.lastMessageAt = Date.now();
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch {
      return reject(socket, 'invalid_message', 'not JSON');
    }
    const parsed = nodeMessageSchema.safeParse(json);
    if (!parsed.success) {
      const problem = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
      if (session) await this.failMalformed(session, json, problem);
      return reject(socket, 'invalid_message', problem);
    }
    const msg = parsed.data;

    if (!session) {
      if (msg.type !== 'register') return reject(socket, 'not_registered', 'register first');
      return this.register(socket, msg, challenge);
    }
    if (msg.nodeId !== session.nodeId) return reject(socket, 'wrong_node', 'this socket is registered to another node id');
    switch (msg.type) {
      case 'register':
        return reject(socket, 'already_registered', 'already registered');
      case 'heartbeat':
        await this.heartbeat(socket, session, msg);
        return session;
      case 'job_chunk':
        // Queued on arrival, appended on its turn together with any that came after it meanwhile.
        session.streams.get(attemptKey(msg.jobId, msg.attempt))?.pending.push(msg);
        await inJobOrder(session, msg.jobId, () => this.chunkStreams.chunks(socket, session, msg));
        return session;
      case 'result':
        await inJobOrder(session, msg.jobId, () => this.result(socket, session, msg));
        return session;
      case 'job_error':
        await inJobOrder(session, msg.jobId, async () => {
          if (!(await verifyMessageAsync(msg, session.nodeId))) return void reject(socket, 'bad_signature', 'job_error signature invalid');
          await this.d.results.acceptJobError(msg, forgetAttempt(session, msg.jobId, msg.attempt));
        });
        return session;
    }
  }

  /**
   * A message that failed its schema but names an attempt this socket runs (a result whose text holds a
   * NUL, say): the socket is authenticated as the node, so the attempt fails as an invalid result and is
   * retried elsewhere at once, rather than running on until its timeout.
   */
  private async failMalformed(session: Session, json: unknown, problem: string): Promise<void> {
    const named = attemptNamed.safeParse(json);
    if (!named.success) return;
    const { jobId, attempt } = named.data;
    await inJobOrder(session, jobId, async () => {
      const dispatched = forgetAttempt(session, jobId, attempt);
      if (dispatched) await this.d.results.failAttempt(jobId, attempt, session.nodeId, 'invalid_result', `malformed ${named.data.type}: ${problem}`, dispatched.startedAt);
    });
  }

  private async register(socket: WebSocket, msg: RegisterMessage, challenge: string): Promise<Session | null> {
    if (msg.challenge !== challenge) return reject(socket, 'bad_challenge', 'challenge mismatch', true);
    if (!this.d.replay.fresh(msg.ts)) return reject(socket, 'stale', 'timestamp outside the accepted window', true);
    if (!(await verifyMessageAsync(msg, msg.nodeId))) return reject(socket, 'bad_signature', 'registration signature invalid', true);
    const refused = participationProblem(this.d.networkConfig.participation(), msg);
    if (refused) return reject(socket, 'not_accepted', refused, true);
    // The operator's consent: its enrolment of this address (in the database), or a token it made for it.
    const tokenProblem = msg.enrolmentToken === undefined ? null : enrolmentTokenProblem(msg.enrolmentToken, this.d.networkAddress, msg.nodeId, msg.operator);
    if (tokenProblem) return reject(socket, 'not_enrolled', tokenProblem, true);
    const bound = await bindNode(this.d.db, msg.nodeId, msg.operator, msg.enrolmentToken !== undefined);
    if (bound !== 'bound') return reject(socket, bound, bindRefusal(bound, msg), true);

    // One socket per node on this instance: a reconnect replaces the old one (whose attempts fail).
    const previous = this.sessions.get(msg.nodeId);
    if (previous) previous.socket.close(4002, 'replaced by a new connection');

    const session: Session = {
      socket,
      nodeId: msg.nodeId,
      agentVersion: msg.agentVersion,
      recordedDigest: undefined,
      inflight: new Map(),
      streams: new Map(),
      jobOrder: new Map(),
      lastMessageAt: Date.now(),
    };
    this.sessions.set(msg.nodeId, session);
    await this.d.presence.upsert({ ...declaration(msg, this.d.networkConfig.capacity()), nodeId: msg.nodeId, instance: this.d.instanceId, mode: 'register' });
    await this.recordDigest(session, msg.configDigest ?? null, true);
    (this.d.nodeStats ?? NO_NODE_STATS).heartbeat(msg.nodeId, msg.running, msg.capacity);
    send(socket, { type: 'registered', nodeId: msg.nodeId, heartbeatIntervalMs: this.d.networkConfig.heartbeat().intervalMs, ...this.configRef() });
    this.d.logger.info({ node: msg.nodeId, network: msg.network, region: msg.region, gpu: msg.gpu, models: msg.models, capacity: msg.capacity }, 'node registered');
    return session;
  }

  private async heartbeat(socket: WebSocket, session: Session, msg: HeartbeatMessage): Promise<void> {
    if (!this.d.replay.fresh(msg.ts)) return void reject(socket, 'stale', 'heartbeat timestamp outside the accepted window');
    if (!(await verifyMessageAsync(msg, session.nodeId))) return void reject(socket, 'bad_signature', 'heartbeat signature invalid');
    if (!(await this.d.replay.firstUse(session.nodeId, msg.nonce))) return void reject(socket, 'replay', 'heartbeat nonce already used');
    const refused = participationProblem(this.d.networkConfig.participation(), { agentVersion: session.agentVersion, network: msg.network });
    if (refused) return void reject(socket, 'not_accepted', refused, true);
    const now = Date.now();
    // Issued together, so that they leave in one write and come back in one read (redis/client.ts).
    const [recreated] = await Promise.all([
      this.d.presence.upsert({ ...declaration(msg, this.d.networkConfig.capacity()), nodeId: session.nodeId, instance: this.d.instanceId, mode: 'heartbeat' }),
      this.d.uptime.markSeen(session.nodeId, epochOf(this.d.rcpClock, now), slotOf(this.d.rcpClock, now)),
    ]);
    if (recreated) this.d.logger.info({ node: session.nodeId }, 'node presence restored from heartbeat');
    (this.d.nodeStats ?? NO_NODE_STATS).heartbeat(session.nodeId, msg.running, msg.capacity);
    // A presence recreated means Redis may have lost everything, the digests' hash with it.
    await this.recordDigest(session, msg.configDigest ?? null, recreated);
    send(socket, { type: 'heartbeat_ack', ts: now, ...this.configRef() });
  }

  /** The `config` field of `registered` and `heartbeat_ack`: the version in force, when there is one. */
  private configRef(): { config?: { version: number; digest: string } } {
    const current = this.d.networkConfig.current();
    return current ? { config: { version: current.version, digest: current.digest } } : {};
  }

  /** Records the digest a node reports, when it changed (or `force`): a steady node costs no write. */
  private async recordDigest(session: Session, digest: string | null, force: boolean): Promise<void> {
    if (!force && session.recordedDigest === digest) return;
    await this.d.nodeConfigDigests.record(session.nodeId, digest);
    session.recordedDigest = digest;
  }

  private async result(socket: WebSocket, session: Session, msg: ResultMessage): Promise<void> {
    // A result for an attempt this socket does not run (stale, or another node's) is checked against the
    // records, which refuse it unless they say this node runs it.
    const dispatched = forgetAttempt(session, msg.jobId, msg.attempt);
    if (dispatched) stageSince('node', dispatched.startedAt);
    const verdict = await this.d.results.acceptResult(msg, dispatched);
    if (dispatched && !verdict.accepted && (verdict.reason === 'bad_signature' || verdict.reason === 'output_hash_mismatch')) {
      // The socket is authenticated as this node, so an unverifiable result is this node's fault.
      await this.d.results.failAttempt(msg.jobId, msg.attempt, session.nodeId, 'invalid_result', verdict.reason, dispatched.startedAt);
    }
    send(socket, { type: 'result_ack', jobId: msg.jobId, attempt: msg.attempt, accepted: verdict.accepted, ...(verdict.accepted ? {} : { reason: verdict.reason }) });
  }



  private async deliver(job: DispatchEnvelope): Promise<void> {
    const { nodeId, terms, startedAt, namespaceId, jobDeadlineAt, ...dispatch } = job;
    const session = this.sessions.get(nodeId);
    if (!session || session.socket.readyState !== session.socket.OPEN) {
      await this.d.results.failAttempt(job.jobId, job.attempt, nodeId, 'disconnected', 'node not connected to its gateway', startedAt);
      return;
    }
    session.inflight.set(job.jobId, { attempt: job.attempt, namespaceId, model: job.model, terms, startedAt, jobDeadlineAt: jobDeadlineAt ?? null, streamed: dispatch.request.stream === true, expects: expectationOf(dispatch.request) });
    if (dispatch.request.stream) session.streams.set(attemptKey(job.jobId, job.attempt), { maxChunks: streamMaxChunks(dispatch.request.max_tokens), next: 0, pending: [] });
    send(session.socket, dispatch);
  }

  private async onClose(session: Session): Promise<void> {
    if (this.sessions.get(session.nodeId) === session) {
      this.sessions.delete(session.nodeId);
      await this.d.presence.remove(session.nodeId, this.d.instanceId);
    }
    for (const [jobId, attempt] of session.inflight) {
      await this.d.results.failAttempt(jobId, attempt.attempt, session.nodeId, 'disconnected', 'node socket closed', attempt.startedAt);
    }
    this.d.logger.info({ node: session.nodeId }, 'node disconnected');
  }
}

/** Why a registration's binding was refused, in words an operator can act on. */
function bindRefusal(result: Exclude<BindResult, 'bound'>, msg: RegisterMessage): string {
  switch (result) {
    case 'unknown_operator':
      return 'no such operator account';
    case 'bound_to_other_operator':
      return 'node is bound to another operator';
    case 'not_enrolled':
      return (
        `node ${msg.nodeId} is not enrolled by operator ${msg.operator}: the operator enrols its address ` +
        '(POST /account/nodes/enrolments, or `resultity admin node-enrol`) or gives the node an enrolment token (--enrolment-token)'
      );
  }
}

/**
 * What a registration or heartbeat declares about the node (protocol.ts), as presence stores it, with the
 * network's capacity rules applied: the declared capacity is a ceiling, capped per GPU class and model, and
 * the node starts with the config's start slots (domain/capacity.ts).
 */
function declaration(msg: RegisterMessage | HeartbeatMessage, rules: CapacityRules) {
  return {
    capacity: msg.capacity,
    running: msg.running,
    network: msg.network,
    region: msg.region,
    gpu: msg.gpu,
    models: msg.models,
    ceilings: capacityCeilings(rules, msg.capacity, msg.gpu.name, msg.models),
    startSlots: rules.startSlots,
    capabilities: msg.capabilities ?? [],
  };
}





