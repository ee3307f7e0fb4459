// The consumer console: the account's namespaces; for the one selected, its balance and holds, API keys
// (create with limits, shown once, revoke, rotate), usage by day, model and key as charts with CSV
// download, and recent jobs with their status and charge.
import { useEffect, useState } from 'preact/hooks';
import { api, download, messageOf } from '../api.js';
import type { ApiKey, Balance, IssuedKey, Job, List, Namespace, UsageReport, UsageRow } from '../api-types.js';
import { seriesBy, StackedBars } from '../components/charts.js';
import { credits, dateTime, daysBetween, int, isoDay, microToCredits, shortId } from '../format.js';
import { useLoad, usePoll } from '../hooks.js';

function Balances({ ns }: { ns: Namespace }) {
  const b = usePoll(() => api<Balance>('GET', `/account/namespaces/${ns.id}/balance`), 5_000);
  return (
    <section class="tiles" aria-label="Balance">
      <div class="tile">
        <div class="tile-value" data-testid="available">{b.data ? credits(b.data.available) : '—'}</div>
        <div class="tile-label">Credits available</div>
      </div>
      <div class="tile">
        <div class="tile-value">{b.data ? credits(b.data.held) : '—'}</div>
        <div class="tile-label">Credits held</div>
        <div class="tile-hint">the worst case of jobs still running</div>
      </div>
      <div class="tile">
        <div class="tile-value">
          <span class={`badge ${ns.network}`}>{ns.network}</span>
        </div>
        <div class="tile-label">Network{ns.subcloud ? ` · subcloud ${ns.subcloud}` : ''}</div>
      </div>
    </section>
  );
}

function SecretOnce({ issued, onClose }: { issued: IssuedKey; onClose: () => void }) {
  const [copied, setCopied] = useState(false);
  return (
    <div class="callout" role="status">
      <p>
        <strong>Your new API key{issued.name ? ` “${issued.name}”` : ''}.</strong> Copy it now: it is shown once and stored only as a hash.
      </p>
      <code class="secret" data-testid="secret">
        {issued.key}
      </code>
      <div class="row">
        <button
          type="button"
          onClick={() => {
            void navigator.clipboard?.writeText(issued.key).then(() => setCopied(true));
          }}
        >
          {copied ? 'Copied' : 'Copy'}
        </button>
        <button type="button" class="secondary" onClick={onClose}>
          I have saved it
        </button>
      </div>
    </div>
  );
}

function Keys({ ns }: { ns: Namespace }) {
  const keys = useLoad(() => api<List<ApiKey>>('GET', `/account/namespaces/${ns.id}/keys`), [ns.id]);
  const [issued, setIssued] = useState<IssuedKey | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [form, setForm] = useState({ name: '', rps: '', burst: '', cap: '', expires: '' });
  const set = (k: keyof typeof form) => (e: Event) => setForm({ ...form, [k]: (e.currentTarget as HTMLInputElement).value });

  const act = async (run: () => Promise<IssuedKey | undefined>) => {
    setError(null);
    try {
      const k = await run();
      if (k) setIssued(k);
      keys.reload();
    } catch (err) {
      setError(messageOf(err));
    }
  };

  const create = (e: Event) => {
    e.preventDefault();
    const body: Record<string, unknown> = {};
    if (form.name.trim()) body.name = form.name.trim();
    if (form.rps) body.rate_limit_rps = Number(form.rps);
    if (form.burst) body.rate_limit_burst = Number(form.burst);
    if (form.cap) body.monthly_cap = Number(form.cap);
    if (form.expires) body.expires_at = new Date(`${form.expires}T23:59:59Z`).toISOString();
    void act(async () => {
      const k = await api<IssuedKey>('POST', `/account/namespaces/${ns.id}/keys`, body);
      setForm({ name: '', rps: '', burst: '', cap: '', expires: '' });
      return k;
    });
  };

  const live = (keys.data?.data ?? []).filter((k) => !k.revoked_at);
  return (
    <section class="card" aria-labelledby="keys-title">
      <h2 id="keys-title">API keys</h2>
      {issued ? <SecretOnce issued={issued} onClose={() => setIssued(null)} /> : null}
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
      {live.length === 0 ? (
        <p class="muted">No key yet: create one below, then call the API with it.</p>
      ) : (
        <div class="scroll">
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Key</th>
                <th scope="col">Limits</th>
                <th scope="col">Last used</th>
                <th scope="col">Expires</th>
                <th scope="col">
                  <span class="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {live.map((k) => (
                <tr key={k.id}>
                  <th scope="row">{k.name || <span class="muted">unnamed</span>}</th>
                  <td class="mono">{k.key_prefix}…</td>
                  <td>
                    {k.rate_limit_rps ? `${k.rate_limit_rps} req/s` : 'default rate'}
                    {k.rate_limit_burst ? `, burst ${k.rate_limit_burst}` : ''}
                    {k.monthly_cap_micro !== null ? `, ${credits(microToCredits(k.monthly_cap_micro))} credits/month` : ''}
                  </td>
                  <td>{dateTime(k.last_used_at)}</td>
                  <td>{k.expires_at ? dateTime(k.expires_at) : 'never'}</td>
                  <td class="actions">
                    <button
                      type="button"
                      class="secondary small"
                      onClick={() => {
                        if (confirm(`Rotate the key ${k.key_prefix}…? It stops working at once; the new one has the same limits.`)) {
                          void act(() => api<IssuedKey>('POST', `/account/namespaces/${ns.id}/keys/${k.id}/rotate`));
                        }
                      }}
                    >
                      Rotate
                    </button>
                    <button
                      type="button"
                      class="danger small"
                      onClick={() => {
                        if (confirm(`Revoke the key ${k.key_prefix}…? It stops working at once.`)) {
                          void act(async () => {
                            await api<undefined>('DELETE', `/account/namespaces/${ns.id}/keys/${k.id}`);
                            return undefined;
                          });
                        }
                      }}
                    >
                      Revoke
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <details class="create">
        <summary>Create a key</summary>
        <form class="form grid" onSubmit={create}>
          <label>
            Name
            <input value={form.name} maxLength={100} onInput={set('name')} placeholder="e.g. production" />
          </label>
          <label>
            Requests per second
            <input type="number" min="1" value={form.rps} onInput={set('rps')} placeholder="platform default" />
          </label>
          <label>
            Burst
            <input type="number" min="1" value={form.burst} onInput={set('burst')} placeholder="platform default" />
          </label>
          <label>
            Monthly cap (credits)
            <input type="number" min="0" step="any" value={form.cap} onInput={set('cap')} placeholder="no cap" />
          </label>
          <label>
            Expires on (UTC)
            <input type="date" value={form.expires} min={isoDay(1)} onInput={set('expires')} />
          </label>
          <div class="row end">
            <button type="submit">Create key</button>
          </div>
        </form>
      </details>
    </section>
  );
}

function totalsBy(rows: readonly UsageRow[], key: (r: UsageRow) => string): Array<{ key: string; requests: number; tokens: number; credits: number }> {
  const m = new Map<string, { key: string; requests: number; tokens: number; credits: number }>();
  for (const r of rows) {
    const k = key(r);
    const t = m.get(k) ?? { key: k, requests: 0, tokens: 0, credits: 0 };
    t.requests += r.requests;
    t.tokens += r.prompt_tokens + r.completion_tokens;
    t.credits += Number(r.credits_charged);
    m.set(k, t);
  }
  return [...m.values()].sort((a, b) => b.credits - a.credits || a.key.localeCompare(b.key));
}

function Usage({ ns }: { ns: Namespace }) {
  const [from, setFrom] = useState(isoDay(-13));
  const [to, setTo] = useState(isoDay());
  const [error, setError] = useState<string | null>(null);
  const query = `from=${from}&to=${to}`;
  const usage = useLoad(() => api<UsageReport>('GET', `/account/namespaces/${ns.id}/usage?${query}`), [ns.id, query]);
  const rows = usage.data?.data ?? [];
  const days = daysBetween(from, to);
  const keyName = (r: UsageRow) => `${r.key_prefix}…`;
  return (
    <section class="card" aria-labelledby="usage-title">
      <div class="card-head">
        <h2 id="usage-title">Usage</h2>
        <div class="row">
          <label class="inline">
            From <input type="date" value={from} max={to} onChange={(e) => setFrom(e.currentTarget.value)} />
          </label>
          <label class="inline">
            to <input type="date" value={to} min={from} onChange={(e) => setTo(e.currentTarget.value)} />
          </label>
          <button type="button" class="secondary" onClick={usage.reload}>
            Refresh
          </button>
          <button
            type="button"
            class="secondary"
            onClick={() => {
              setError(null);
              download(`/account/namespaces/${ns.id}/usage?${query}&format=csv`, `usage-${ns.name}-${from}-${to}.csv`).catch((err: unknown) => setError(messageOf(err)));
            }}
          >
            Download CSV
          </button>
        </div>
      </div>
      {error || usage.error ? (
        <p class="error" role="alert">
          {error ?? usage.error}
        </p>
      ) : null}
      <div class="charts">
        <StackedBars id="spend" title="Credits charged per day, by model" labels={days} series={seriesBy(rows, days, (r) => r.day, (r) => r.model, (r) => Number(r.credits_charged))} format={(n) => credits(Number(n.toPrecision(4)))} />
        <StackedBars id="requests" title="Requests per day, by key" labels={days} series={seriesBy(rows, days, (r) => r.day, keyName, (r) => r.requests)} format={(n) => int(Math.round(n))} />
      </div>
      <div class="split">
        {(
          [
            ['By model', totalsBy(rows, (r) => r.model)],
            ['By key', totalsBy(rows, keyName)],
          ] as const
        ).map(([title, totals]) => (
          <div key={title}>
            <h3>{title}</h3>
            {totals.length === 0 ? (
              <p class="muted">No usage in this period.</p>
            ) : (
              <div class="scroll">
                <table>
                  <thead>
                    <tr>
                      <th scope="col">{title === 'By model' ? 'Model' : 'Key'}</th>
                      <th scope="col" class="num">Requests</th>
                      <th scope="col" class="num">Tokens</th>
                      <th scope="col" class="num">Credits</th>
                    </tr>
                  </thead>
                  <tbody>
                    {totals.map((t) => (
                      <tr key={t.key}>
                        <th scope="row" class="mono">
                          {t.key}
                        </th>
                        <td class="num">{int(t.requests)}</td>
                        <td class="num">{int(t.tokens)}</td>
                        <td class="num">{credits(Number(t.credits.toFixed(6)))}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </div>
        ))}
      </div>
    </section>
  );
}

function Jobs({ ns }: { ns: Namespace }) {
  const jobs = usePoll(() => api<List<Job>>('GET', `/account/namespaces/${ns.id}/jobs?limit=25`), 5_000);
  const list = jobs.data?.data ?? [];
  return (
    <section class="card" aria-labelledby="jobs-title">
      <h2 id="jobs-title">Recent jobs</h2>
      {list.length === 0 ? (
        <p class="muted">No job in the last 7 days.</p>
      ) : (
        <div class="scroll">
          <table data-testid="jobs">
            <thead>
              <tr>
                <th scope="col">Job</th>
                <th scope="col">Model</th>
                <th scope="col">Status</th>
                <th scope="col" class="num">Tokens in / out</th>
                <th scope="col" class="num">Charge</th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {list.map((j) => (
                <tr key={j.id}>
                  <th scope="row" class="mono" title={j.id}>
                    {shortId(j.id, 8, 4)}
                  </th>
                  <td class="mono">{j.model}</td>
                  <td>
                    <span class={`status ${j.status}`}>{j.status}</span>
                    {j.error_code ? <span class="muted"> {j.error_code}</span> : null}
                  </td>
                  <td class="num">
                    {j.prompt_tokens ?? '—'} / {j.completion_tokens ?? '—'}
                  </td>
                  <td class="num">{j.credits_charged !== null ? credits(j.credits_charged) : <span class="muted">holds {credits(j.hold)}</span>}</td>
                  <td>{dateTime(j.created_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function NewNamespace({ onCreated }: { onCreated: (ns: Namespace) => void }) {
  const [name, setName] = useState('');
  const [network, setNetwork] = useState<'mainnet' | 'testnet'>('mainnet');
  const [error, setError] = useState<string | null>(null);
  return (
    <form
      class="form inline-form"
      onSubmit={(e) => {
        e.preventDefault();
        setError(null);
        api<Namespace>('POST', '/account/namespaces', { name, network }).then(
          (ns) => {
            setName('');
            onCreated(ns);
          },
          (err: unknown) => setError(messageOf(err)),
        );
      }}
    >
      <label>
        New namespace
        <input required value={name} maxLength={63} onInput={(e) => setName(e.currentTarget.value)} placeholder="e.g. my-app" />
      </label>
      <label>
        Network
        <select value={network} onChange={(e) => setNetwork(e.currentTarget.value === 'testnet' ? 'testnet' : 'mainnet')}>
          <option value="mainnet">mainnet</option>
          <option value="testnet">testnet</option>
        </select>
      </label>
      <button type="submit">Create</button>
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
    </form>
  );
}

export function Console() {
  const namespaces = useLoad(() => api<List<Namespace>>('GET', '/account/namespaces'), []);
  const [selected, setSelected] = useState<string | null>(null);
  const list = namespaces.data?.data ?? [];
  useEffect(() => {
    if (list.length > 0 && !list.some((n) => n.id === selected)) setSelected(list[0]!.id);
  }, [list, selected]);
  const ns = list.find((n) => n.id === selected) ?? null;
  return (
    <main id="main">
      <div class="page-head">
        <h1>Consumer console</h1>
      </div>
      <section class="card" aria-labelledby="ns-title">
        <h2 id="ns-title">Namespaces</h2>
        {namespaces.error ? (
          <p class="error" role="alert">
            {namespaces.error}
          </p>
        ) : null}
        {list.length > 0 ? (
          <div class="tabs" role="group" aria-label="Namespaces">
            {list.map((n) => (
              <button key={n.id} type="button" aria-pressed={n.id === selected} class={n.id === selected ? 'tab active' : 'tab'} onClick={() => setSelected(n.id)}>
                {n.name} <span class={`badge small ${n.network}`}>{n.network}</span>
              </button>
            ))}
          </div>
        ) : namespaces.loading ? null : (
          <p class="muted">No namespace yet. A namespace holds credits, API keys, usage and jobs.</p>
        )}
        <NewNamespace
          onCreated={(created) => {
            setSelected(created.id);
            namespaces.reload();
          }}
        />
      </section>
      {ns ? (
        <div key={ns.id}>
          <Balances ns={ns} />
          <Keys ns={ns} />
          <Usage ns={ns} />
          <Jobs ns={ns} />
        </div>
      ) : null}
    </main>
  );
}
