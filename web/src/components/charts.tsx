// Stacked bar charts in SVG, drawn here (no chart library, nothing fetched): one bar per day, one colour
// per series, with a legend and, for screen readers and exact figures, the data as a table.
import { useState } from 'preact/hooks';

export interface Series {
  name: string;
  values: number[];
}

const W = 640;
const H = 220;
const PAD = { left: 72, right: 8, top: 10, bottom: 34 };
const PALETTE = 8;

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

export function StackedBars(props: { title: string; labels: string[]; series: Series[]; format: (n: number) => string; id: string }) {
  const { labels, series, format } = props;
  const [showTable, setShowTable] = useState(false);
  const totals = labels.map((_, i) => series.reduce((s, x) => s + (x.values[i] ?? 0), 0));
  const max = niceMax(Math.max(0, ...totals));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const band = labels.length ? plotW / labels.length : plotW;
  const barW = Math.max(1, Math.min(36, band * 0.7));
  const y = (v: number) => PAD.top + plotH - (v / max) * plotH;
  // Gridlines whose labels would repeat (small whole-number scales) are left out.
  const ticks: number[] = [];
  const seen = new Set<string>();
  for (const f of [0, 0.25, 0.5, 0.75, 1]) {
    const label = format(f * max);
    if (seen.has(label)) continue;
    seen.add(label);
    ticks.push(f * max);
  }
  const labelEvery = Math.max(1, Math.ceil(labels.length / 8));
  const titleId = `${props.id}-title`;
  const empty = totals.every((t) => t === 0);
  return (
    <figure class="chart">
      <figcaption id={titleId}>{props.title}</figcaption>
      {empty ? (
        <p class="muted">Nothing in this period.</p>
      ) : (
        <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-labelledby={titleId} preserveAspectRatio="xMidYMid meet">
          {ticks.map((t) => (
            <g key={t}>
              <line class="grid" x1={PAD.left} x2={W - PAD.right} y1={y(t)} y2={y(t)} />
              <text class="axis" x={PAD.left - 6} y={y(t) + 4} text-anchor="end">
                {format(t)}
              </text>
            </g>
          ))}
          {labels.map((label, i) => {
            let base = 0;
            const x = PAD.left + i * band + (band - barW) / 2;
            return (
              <g key={label}>
                {series.map((s, k) => {
                  const v = s.values[i] ?? 0;
                  if (v <= 0) return null;
                  const top = y(base + v);
                  const h = y(base) - top;
                  base += v;
                  return (
                    <rect key={s.name} class={`s${k % PALETTE}`} x={x} y={top} width={barW} height={Math.max(h, 0.5)}>
                      <title>{`${label} · ${s.name}: ${format(v)}`}</title>
                    </rect>
                  );
                })}
                {i % labelEvery === 0 ? (
                  <text class="axis" x={x + barW / 2} y={H - PAD.bottom + 16} text-anchor="middle">
                    {label.slice(5)}
                  </text>
                ) : null}
              </g>
            );
          })}
        </svg>
      )}
      {series.length > 0 && !empty ? (
        <ul class="legend">
          {series.map((s, k) => (
            <li key={s.name}>
              <span class={`swatch s${k % PALETTE}`} aria-hidden="true" />
              {s.name}
            </li>
          ))}
        </ul>
      ) : null}
      {!empty ? (
        <button type="button" class="link" aria-expanded={showTable} onClick={() => setShowTable(!showTable)}>
          {showTable ? 'Hide the figures' : 'Show the figures'}
        </button>
      ) : null}
      {showTable ? (
        <div class="scroll">
          <table>
            <thead>
              <tr>
                <th scope="col">Day</th>
                {series.map((s) => (
                  <th scope="col" key={s.name}>
                    {s.name}
                  </th>
                ))}
                <th scope="col">Total</th>
              </tr>
            </thead>
            <tbody>
              {labels.map((label, i) => (
                <tr key={label}>
                  <th scope="row">{label}</th>
                  {series.map((s) => (
                    <td class="num" key={s.name}>
                      {format(s.values[i] ?? 0)}
                    </td>
                  ))}
                  <td class="num">{format(totals[i] ?? 0)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </figure>
  );
}

/** A horizontal gauge: `value` of `max`, labelled. */
export function Meter(props: { label: string; value: number; max: number; text?: string }) {
  const f = props.max > 0 ? Math.min(1, props.value / props.max) : 0;
  return (
    <div class="meter">
      <div class="meter-label">
        <span>{props.label}</span>
        <span>{props.text ?? `${props.value} / ${props.max}`}</span>
      </div>
      <svg class="meter-bar" viewBox="0 0 100 6" preserveAspectRatio="none" aria-hidden="true">
        <rect class="meter-track" x="0" y="0" width="100" height="6" rx="3" />
        <rect class="meter-fill" x="0" y="0" width={f * 100} height="6" rx="3" />
      </svg>
    </div>
  );
}

/** Series per key from rows: one value per day label, summed. */
export function seriesBy<R>(rows: readonly R[], labels: readonly string[], day: (r: R) => string, key: (r: R) => string, value: (r: R) => number): Series[] {
  const index = new Map(labels.map((l, i) => [l, i]));
  const byKey = new Map<string, number[]>();
  for (const r of rows) {
    const i = index.get(day(r));
    if (i === undefined) continue;
    const k = key(r);
    let values = byKey.get(k);
    if (!values) byKey.set(k, (values = labels.map(() => 0)));
    values[i] = (values[i] ?? 0) + value(r);
  }
  return [...byKey].sort((a, b) => a[0].localeCompare(b[0])).map(([name, values]) => ({ name, values }));
}
