// The Grafana dashboard in the repository (docs/grafana/resultity-backbone.json) may only chart metrics
// the server exports: every resultity_* name in its queries must be registered in this process's
// registry (histogram series by their _bucket, _sum and _count), so that a renamed metric fails here
// instead of leaving an empty panel in production.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { metricsRegistry } from '../../src/metrics/engine-metrics.js';
import '../../src/metrics/job-stages.js';
import '../../src/metrics/degraded.js';
import '../../src/metrics/fleet.js';

test('the Grafana dashboard references only metrics the server exports, and charts every one of ours', async () => {
  const dashboard = JSON.parse(await readFile(new URL('../../../docs/grafana/resultity-backbone.json', import.meta.url), 'utf8')) as {
    panels: Array<{ title: string; targets: Array<{ expr: string }> }>;
    templating: { list: Array<{ query?: unknown }> };
  };
  const exprs = [...dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr)), ...dashboard.templating.list.map((v) => (typeof v.query === 'string' ? v.query : ''))];
  const referenced = new Set(exprs.flatMap((e) => e.match(/\bresultity_[a-z0-9_]+/g) ?? []));
  const exported = new Map((await metricsRegistry.getMetricsAsJSON()).map((m) => [m.name, String(m.type)]));
  const unknown = [...referenced].filter((name) => {
    if (exported.has(name)) return false;
    const base = name.replace(/_(bucket|sum|count)$/, '');
    return !(base !== name && exported.get(base) === 'histogram');
  });
  assert.deepEqual(unknown, [], 'metrics charted but not exported');
  const ours = [...exported.keys()].filter((n) => !n.startsWith('resultity_process_'));
  const charted = new Set([...referenced].map((n) => n.replace(/_(bucket|sum|count)$/, '')));
  assert.deepEqual(ours.filter((n) => !charted.has(n)), [], 'metrics exported but on no panel');
  assert.ok(referenced.has('resultity_process_nodejs_eventloop_lag_p99_seconds'), 'event-loop lag is charted');
});
