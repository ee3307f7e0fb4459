// The network explorer: public, no sign-in. The network's size and health from GET /status (refreshed
// every two seconds while the page is visible; the server computes a snapshot at most once a second),
// mainnet and testnet side by side, and the network config version in force (GET /io/config).
import { api } from '../api.js';
import type { IoConfig, NetworkStatus, Status } from '../api-types.js';
import { Meter } from '../components/charts.js';
import { ago, int, shortId } from '../format.js';
import { usePoll } from '../hooks.js';

const STATUS_EVERY_MS = 2_000;
const CONFIG_EVERY_MS = 15_000;

function Tile(props: { label: string; value: string; hint?: string }) {
  return (
    <div class="tile">
      <div class="tile-value">{props.value}</div>
      <div class="tile-label">{props.label}</div>
      {props.hint ? <div class="tile-hint">{props.hint}</div> : null}
    </div>
  );
}

function NetworkCard({ n }: { n: NetworkStatus }) {
  const serving = n.models.filter((m) => m.online_nodes > 0);
  return (
    <section class="card network" aria-labelledby={`net-${n.network}`} data-network={n.network}>
      <h3 id={`net-${n.network}`}>
        <span class={`badge ${n.network}`}>{n.network}</span>
        <span class="net-count" data-testid={`${n.network}-online`}>
          {int(n.nodes.online_nodes)} {n.nodes.online_nodes === 1 ? 'node' : 'nodes'} online
        </span>
      </h3>
      <Meter label="Slots in use" value={n.nodes.in_use} max={n.nodes.capacity} text={`${int(n.nodes.in_use)} of ${int(n.nodes.capacity)} (${int(n.nodes.free)} free)`} />
      <div class="split">
        <div>
          <h4>By region</h4>
          {n.by_region.length === 0 ? (
            <p class="muted">No node online.</p>
          ) : (
            <ul class="counts">
              {n.by_region.map((r) => (
                <li key={r.region ?? '-'}>
                  <span>{r.region ?? 'undeclared'}</span>
                  <span class="num">{int(r.online_nodes)}</span>
                </li>
              ))}
            </ul>
          )}
        </div>
        <div>
          <h4>By GPU class</h4>
          {n.by_gpu.length === 0 ? (
            <p class="muted">No node online.</p>
          ) : (
            <ul class="counts">
              {n.by_gpu.map((g) => (
                <li key={g.gpu}>
                  <span>{g.gpu}</span>
                  <span class="num">{int(g.online_nodes)}</span>
                </li>
              ))}
            </ul>
          )}
        </div>
      </div>
      <h4>Models served</h4>
      {serving.length === 0 ? (
        <p class="muted">No model is served on {n.network} right now.</p>
      ) : (
        <div class="scroll">
          <table>
            <thead>
              <tr>
                <th scope="col">Model</th>
                <th scope="col" class="num">Nodes</th>
                <th scope="col" class="num">Free</th>
                <th scope="col" class="num">Capacity</th>
              </tr>
            </thead>
            <tbody>
              {serving.map((m) => (
                <tr key={m.id}>
                  <th scope="row" class="mono">
                    {m.id}
                  </th>
                  <td class="num">{int(m.online_nodes)}</td>
                  <td class="num">{int(m.free)}</td>
                  <td class="num">{int(m.capacity)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function ConfigCard({ config }: { config: IoConfig | null }) {
  if (!config) return null;
  const d = config.document;
  return (
    <section class="card" aria-labelledby="config-title">
      <h2 id="config-title">Network config in force</h2>
      <dl class="facts">
        <div>
          <dt>Version</dt>
          <dd data-testid="config-version">{config.version}</dd>
        </div>
        <div>
          <dt>Digest</dt>
          <dd class="mono" title={config.digest}>
            {shortId(config.digest, 10, 6)}
          </dd>
        </div>
        <div>
          <dt>Issued</dt>
          <dd>{ago(d.issuedAt)}</dd>
        </div>
        <div>
          <dt>Networks accepted</dt>
          <dd>{d.participation.networks.join(', ')}</dd>
        </div>
        <div>
          <dt>Max tokens per job</dt>
          <dd>{int(d.jobs.maxTokens)}</dd>
        </div>
        <div>
          <dt>Attempts per job</dt>
          <dd>{d.jobs.maxAttempts}</dd>
        </div>
        <div>
          <dt>Attempt timeout</dt>
          <dd>{Math.round(d.jobs.executionTimeoutMs / 1000)} s</dd>
        </div>
        <div>
          <dt>Heartbeat</dt>
          <dd>
            every {Math.round(d.heartbeat.intervalMs / 1000)} s, offline after {Math.round(d.heartbeat.ttlMs / 1000)} s
          </dd>
        </div>
        <div>
          <dt>Least agent version</dt>
          <dd>{d.participation.minAgentVersion ?? 'any'}</dd>
        </div>
        <div>
          <dt>Signed by</dt>
          <dd class="mono" title={config.network}>
            {shortId(config.network)}
          </dd>
        </div>
      </dl>
    </section>
  );
}

export function Explorer() {
  const status = usePoll(() => api<Status>('GET', '/status', undefined, false), STATUS_EVERY_MS);
  const config = usePoll(() => api<IoConfig>('GET', '/io/config', undefined, false), CONFIG_EVERY_MS);
  const s = status.data;
  const lm = s?.jobs_last_minute;
  return (
    <main id="main">
      <div class="page-head">
        <h1>Network explorer</h1>
        <p class="live" data-testid="live">
          <span class={`dot ${status.error ? 'down' : 'up'}`} aria-hidden="true" />
          {status.error ? `Status unavailable: ${status.error}` : s ? `Live · updated ${ago(s.generated_at)}` : 'Loading…'}
        </p>
      </div>
      {s && lm ? (
        <>
          <section class="tiles" aria-label="Network totals">
            <Tile label="Nodes online" value={int(s.nodes.online)} hint="mainnet and testnet" />
            <Tile label="Slots in use" value={`${int(s.nodes.in_use)} / ${int(s.nodes.capacity)}`} />
            <Tile label="Jobs in the last minute" value={int(lm.completed + lm.failed + lm.expired)} hint={`${int(lm.completed)} completed · ${int(lm.failed)} failed · ${int(lm.expired)} expired`} />
            <Tile label="Requests per second" value={lm.requests_per_second.toFixed(2)} />
            <Tile label="Latency p50 / p99" value={lm.latency_ms.p50 === null ? '—' : `${int(lm.latency_ms.p50)} / ${int(lm.latency_ms.p99 ?? 0)} ms`} />
            <Tile label="Config version" value={config.data ? String(config.data.version) : '—'} />
          </section>
          <p class="muted" data-testid="latest-snapshot">
            Latest snapshot:{' '}
            {s.latest_snapshot ? (
              <>
                <span class="mono">{s.latest_snapshot.cid}</span> ({s.latest_snapshot.day ?? s.latest_snapshot.kind}, {ago(s.latest_snapshot.created_at)})
              </>
            ) : (
              'none yet'
            )}
          </p>
          <h2 class="section-title">Networks</h2>
          <div class="networks">
            {s.networks.map((n) => (
              <NetworkCard key={n.network} n={n} />
            ))}
          </div>
          <section class="card" aria-labelledby="models-title">
            <h2 id="models-title">Models and queues</h2>
            {s.models.length === 0 ? (
              <p class="muted">The catalogue is empty.</p>
            ) : (
              <div class="scroll">
                <table>
                  <thead>
                    <tr>
                      <th scope="col">Model</th>
                      <th scope="col" class="num">Nodes</th>
                      <th scope="col" class="num">Slots in use</th>
                      <th scope="col" class="num">Free</th>
                      <th scope="col" class="num">Queued</th>
                      <th scope="col" class="num">Waiting</th>
                    </tr>
                  </thead>
                  <tbody>
                    {s.models.map((m) => (
                      <tr key={m.id}>
                        <th scope="row" class="mono">
                          {m.id}
                        </th>
                        <td class="num">{int(m.online_nodes)}</td>
                        <td class="num">
                          {int(m.in_use)} / {int(m.capacity)}
                        </td>
                        <td class="num">{int(m.free)}</td>
                        <td class="num">{m.queued === null ? '—' : int(m.queued)}</td>
                        <td class="num">{int(m.waiting)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </section>
          <ConfigCard config={config.data} />
        </>
      ) : null}
    </main>
  );
}
