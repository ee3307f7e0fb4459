// The operator console: the account's nodes (online state, what each declared, flags and the reason for
// each, score and its parts), contribution points per epoch of the node chosen, earnings by node and day,
// and withdrawal requests.
import { useEffect, useState } from 'preact/hooks';
import { api, messageOf } from '../api.js';
import type { Earnings, List, OperatorNode, RcpEpoch, Withdrawal } from '../api-types.js';
import { Meter, seriesBy, StackedBars } from '../components/charts.js';
import { ago, credits, dateTime, daysBetween, int, isoDay, pct, shortId } from '../format.js';
import { useLoad, usePoll } from '../hooks.js';
import { useSession } from '../session.js';

function flagsOf(n: OperatorNode): string[] {
  const f: string[] = [];
  if (n.flags.paused) f.push('paused');
  if (n.flags.frozen) f.push('frozen');
  if (n.flags.cooldown_until) f.push(`cooling down until ${dateTime(n.flags.cooldown_until)}`);
  return f;
}

function NodeCard({ n, selected, onSelect }: { n: OperatorNode; selected: boolean; onSelect: () => void }) {
  const flags = flagsOf(n);
  const p = n.presence;
  return (
    <article class={`card node ${selected ? 'selected' : ''}`} aria-labelledby={`node-${n.id}`} data-testid="node">
      <div class="card-head">
        <h3 id={`node-${n.id}`} class="mono" title={n.id}>
          {shortId(n.id, 8, 6)}
        </h3>
        <span class={`pill ${n.online ? 'online' : 'offline'}`}>{n.online ? 'online' : 'offline'}</span>
      </div>
      {p ? (
        <>
          <p class="muted">
            <span class={`badge small ${p.network}`}>{p.network}</span> {p.region ?? 'no region'} · {p.gpu === 'none' ? 'no GPU' : `${p.gpu}, ${int(p.gpu_memory_mb)} MiB`} · seen {ago(p.seen_at)}
          </p>
          <Meter label="Slots in use" value={p.in_use} max={p.capacity} />
          <p class="models mono">{p.models.join(', ') || 'no model'}</p>
        </>
      ) : (
        <p class="muted">Last registered {dateTime(n.last_registered_at)}.</p>
      )}
      <div class={`flags ${flags.length ? 'flagged' : ''}`} data-testid="flags">
        {flags.length === 0 ? (
          <p>
            <span class="pill ok">in rotation</span>
          </p>
        ) : (
          <p>
            {flags.map((f) => (
              <span key={f} class="pill warn">
                {f}
              </span>
            ))}
          </p>
        )}
        {n.flags.reason ? (
          <p class="reason">
            <strong>Reason:</strong> {n.flags.reason}
            {n.flags.updated_at ? <span class="muted"> ({ago(n.flags.updated_at)})</span> : null}
          </p>
        ) : null}
      </div>
      {n.score ? (
        <div class="score">
          <Meter label="Score" value={n.score.score} max={1} text={pct(n.score.score)} />
          <Meter label="Success rate" value={n.score.success_rate} max={1} text={pct(n.score.success_rate)} />
          <Meter label="Blind-job accuracy" value={n.score.blind_accuracy} max={1} text={pct(n.score.blind_accuracy)} />
          <Meter label="Latency against peers" value={n.score.latency_factor} max={1} text={pct(n.score.latency_factor)} />
          <p class="muted small">
            Over {int(n.score.attempts)} attempts and {int(n.score.blind_jobs)} blind jobs · updated {ago(n.score.updated_at)}
          </p>
        </div>
      ) : (
        <p class="muted small">Not scored yet: scores come from the node's recent attempts.</p>
      )}
      <button type="button" class="secondary small" aria-pressed={selected} onClick={onSelect}>
        Contribution points
      </button>
    </article>
  );
}

function Rcp({ nodeId }: { nodeId: string }) {
  const rcp = useLoad(() => api<List<RcpEpoch>>('GET', `/account/nodes/${nodeId}/rcp?limit=14`), [nodeId]);
  const epochs = [...(rcp.data?.data ?? [])].reverse();
  const labels = epochs.map((e) => `#${e.epoch}`);
  return (
    <section class="card" aria-labelledby="rcp-title">
      <h2 id="rcp-title">
        Contribution points of <span class="mono">{shortId(nodeId, 8, 6)}</span>
      </h2>
      {rcp.error ? (
        <p class="error" role="alert">
          {rcp.error}
        </p>
      ) : null}
      {epochs.length === 0 ? (
        <p class="muted">No contribution points yet: one per completed job, and uptime seconds from heartbeats when an epoch closes.</p>
      ) : (
        <>
          <StackedBars
            id="rcp"
            title="Points per epoch"
            labels={labels}
            series={[
              { name: 'jobs', values: epochs.map((e) => e.job_points) },
              { name: 'uptime', values: epochs.map((e) => e.uptime_points) },
            ]}
            format={(n) => int(Math.round(n))}
          />
          <div class="scroll">
            <table>
              <thead>
                <tr>
                  <th scope="col">Epoch</th>
                  <th scope="col">From</th>
                  <th scope="col" class="num">Job points</th>
                  <th scope="col" class="num">Uptime points</th>
                  <th scope="col" class="num">Total</th>
                </tr>
              </thead>
              <tbody>
                {[...epochs].reverse().map((e) => (
                  <tr key={e.epoch}>
                    <th scope="row">{e.epoch}</th>
                    <td>{dateTime(e.starts_at)}</td>
                    <td class="num">{int(e.job_points)}</td>
                    <td class="num">{int(e.uptime_points)}</td>
                    <td class="num">{int(e.total_points)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </section>
  );
}

function EarningsCard() {
  const [from, setFrom] = useState(isoDay(-13));
  const [to, setTo] = useState(isoDay());
  const earnings = useLoad(() => api<Earnings>('GET', `/account/earnings?from=${from}&to=${to}`), [from, to]);
  const days = daysBetween(from, to);
  const rows = earnings.data?.by_node_and_day ?? [];
  return (
    <section class="card" aria-labelledby="earnings-title">
      <div class="card-head">
        <h2 id="earnings-title">Earnings</h2>
        <div class="row">
          <label class="inline">
            From <input type="date" value={from} max={to} onChange={(e) => setFrom(e.currentTarget.value)} />
          </label>
          <label class="inline">
            to <input type="date" value={to} min={from} onChange={(e) => setTo(e.currentTarget.value)} />
          </label>
        </div>
      </div>
      {earnings.error ? (
        <p class="error" role="alert">
          {earnings.error}
        </p>
      ) : null}
      <div class="tiles">
        <div class="tile">
          <div class="tile-value" data-testid="earned">{earnings.data ? credits(earnings.data.earned) : '—'}</div>
          <div class="tile-label">Credits earned, available to withdraw</div>
        </div>
        <div class="tile">
          <div class="tile-value">{earnings.data ? credits(earnings.data.pending_withdrawal) : '—'}</div>
          <div class="tile-label">Credits in pending withdrawals</div>
        </div>
      </div>
      <StackedBars
        id="earnings"
        title="Credits earned per day, by node"
        labels={days}
        series={seriesBy(rows, days, (r) => r.day, (r) => (r.node_id ? shortId(r.node_id) : 'jobs past the live window'), (r) => Number(r.earned))}
        format={(n) => credits(Number(n.toPrecision(4)))}
      />
    </section>
  );
}

function Withdrawals() {
  const list = useLoad(() => api<List<Withdrawal>>('GET', '/account/withdrawals'), []);
  const [amount, setAmount] = useState('');
  const [destination, setDestination] = useState('');
  const [error, setError] = useState<string | null>(null);
  return (
    <section class="card" aria-labelledby="withdrawals-title">
      <h2 id="withdrawals-title">Withdrawals</h2>
      <form
        class="form inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          setError(null);
          api<Withdrawal>('POST', '/account/withdrawals', { amount: Number(amount), destination }).then(
            () => {
              setAmount('');
              list.reload();
            },
            (err: unknown) => setError(messageOf(err)),
          );
        }}
      >
        <label>
          Amount (credits)
          <input type="number" min="0.000001" step="any" required value={amount} onInput={(e) => setAmount(e.currentTarget.value)} />
        </label>
        <label>
          Destination
          <input required maxLength={200} value={destination} onInput={(e) => setDestination(e.currentTarget.value)} placeholder="e.g. your wallet address" />
        </label>
        <button type="submit">Request withdrawal</button>
      </form>
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
      {(list.data?.data ?? []).length === 0 ? (
        <p class="muted">No withdrawal requested yet. A request holds the amount from your earnings until the platform settles it.</p>
      ) : (
        <div class="scroll">
          <table>
            <thead>
              <tr>
                <th scope="col">Requested</th>
                <th scope="col" class="num">Credits</th>
                <th scope="col">Destination</th>
                <th scope="col">Status</th>
              </tr>
            </thead>
            <tbody>
              {(list.data?.data ?? []).map((w) => (
                <tr key={w.id}>
                  <th scope="row">{dateTime(w.created_at)}</th>
                  <td class="num">{credits(w.amount)}</td>
                  <td class="mono">{w.destination}</td>
                  <td>
                    <span class={`status ${w.status}`}>{w.status === 'exported' ? `sent for settlement ${dateTime(w.exported_at)}` : 'requested'}</span>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

export function Operator() {
  const session = useSession();
  const nodes = usePoll(() => api<List<OperatorNode>>('GET', '/account/nodes'), 5_000);
  const [selected, setSelected] = useState<string | null>(null);
  const list = nodes.data?.data ?? [];
  useEffect(() => {
    if (selected === null && list.length > 0) setSelected(list[0]!.id);
  }, [list, selected]);
  const online = list.filter((n) => n.online).length;
  return (
    <main id="main">
      <div class="page-head">
        <h1>Operator console</h1>
        <p class="muted">
          {list.length === 0 ? 'No node yet.' : `${int(online)} of ${int(list.length)} ${list.length === 1 ? 'node' : 'nodes'} online.`}
        </p>
      </div>
      {nodes.error ? (
        <p class="error" role="alert">
          {nodes.error}
        </p>
      ) : null}
      {list.length === 0 && nodes.data ? (
        <section class="card">
          <h2>Enrol a node</h2>
          <p>Run the node agent in front of your runtime, naming this account as its operator:</p>
          <pre class="mono">resultity node keygen{'\n'}NODE_PRIVATE_KEY=0x... resultity node run --operator {session?.account.id ?? '<account id>'} --runtime openai</pre>
        </section>
      ) : null}
      <div class="nodes">
        {list.map((n) => (
          <NodeCard key={n.id} n={n} selected={n.id === selected} onSelect={() => setSelected(n.id)} />
        ))}
      </div>
      {selected ? <Rcp nodeId={selected} /> : null}
      <EarningsCard />
      <Withdrawals />
    </main>
  );
}
