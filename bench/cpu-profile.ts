// Where the backbone process's own CPU goes: a V8 CPU profile (`node --cpu-prof`) of `resultity serve`
// under the end-to-end load, summarised by what the time was spent on. `npm run bench:profile`
// (scripts/bench.sh profile) runs bench/e2e.ts at one concurrency with the backbone profiled, then this
// file's main() with the profile, which rewrites the `profile` section of BENCHMARKS.md.
//
// Self time is grouped by what ran: socket writes (a write system call; on loopback the kernel also runs
// the receiver's side of TCP inside it) by the client that wrote, then each npm package, the backbone's
// own code by folder, WebAssembly (libsecp256k1), garbage collection and Node.js internals. Idle time is
// left out: percentages are of the time the main thread was busy.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { writeSection } from './report.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}
export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const STARTUP = 'start-up (module loading)';
/** Native functions that only module loading calls here. */
const STARTUP_NATIVES = new Set(['compileSourceTextModule', 'wrapSafe', 'readFileUtf8', 'openFileHandle', 'internalModuleStat', 'internalModuleReadJSON', 'lstat', 'realpathSync', 'compileFunction']);
const WRITES = new Set(['writev', 'writeBuffer', 'writeUtf8String', 'writeLatin1String', 'writeAsciiString', 'writeUcs2String']);
/** The client a socket write belongs to, by the first npm package on its stack. */
const WRITERS: Record<string, string> = {
  pg: 'PostgreSQL (pg)',
  ioredis: 'Redis (ioredis)',
  mongodb: 'MongoDB (driver)',
  'rabbitmq-client': 'RabbitMQ (rabbitmq-client)',
  fastify: 'HTTP replies (fastify)',
  ws: 'node sockets (ws)',
  pino: 'logs (pino)',
};

/** The package of a script URL (`@scope/name` or `name`), or null outside node_modules. */
function packageOf(url: string): string | null {
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  return m ? m[1]! : null;
}

function groupOf(url: string, fn: string): string {
  if (fn === '(garbage collector)') return 'garbage collection';
  if (fn === '(program)' || fn === '(root)') return 'V8 and native code, unattributed';
  if (url.startsWith('wasm://')) return 'WebAssembly (libsecp256k1, tiny-secp256k1)';
  const pkg = packageOf(url);
  if (pkg) return `npm: ${pkg}`;
  const own = /\/dist\/src\/([^/]+)\//.exec(url);
  if (own) return `backbone code: src/${own[1]}/`;
  if (/\/dist\/src\/[^/]+\.js$/.test(url)) return 'backbone code: src/';
  if (url.startsWith('node:internal/modules') || STARTUP_NATIVES.has(fn)) return STARTUP;
  if (/^node:(internal\/)?(net|stream|streams|stream_base_commons|tls)/.test(url) || url.startsWith('node:internal/streams')) return 'Node.js sockets and streams (JS side)';
  if (url.startsWith('node:')) return `Node.js: ${url.replace(/^node:(internal\/)?/, '').split('/')[0]}`;
  return `native: ${fn || '(anonymous)'}`;
}

export interface ProfileShare {
  group: string;
  ms: number;
  share: number;
}

/** Self time by group, busiest first, with the busy total (idle and start-up left out, start-up given apart). */
export function summarise(profile: CpuProfile): { startupMs: number; busyMs: number; totalMs: number; groups: ProfileShare[] } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const groups = new Map<string, number>();
  let busy = 0;
  let startup = 0;
  let total = 0;
  for (const [id, us] of selfUs) {
    total += us;
    const node = byId.get(id)!;
    const { functionName: fn, url } = node.callFrame;
    if (fn === '(idle)') continue;
    let group: string;
    if (WRITES.has(fn)) {
      let writer = 'other';
      for (let cur = parent.get(id); cur !== undefined; cur = parent.get(cur)) {
        const pkg = packageOf(byId.get(cur)!.callFrame.url);
        if (pkg && WRITERS[pkg]) {
          writer = WRITERS[pkg];
          break;
        }
      }
      group = `socket writes: ${writer}`;
    } else {
      group = groupOf(url, fn);
    }
    if (group === STARTUP) startup += us;
    else busy += us;
    groups.set(group, (groups.get(group) ?? 0) + us);
  }
  groups.delete(STARTUP);
  return {
    startupMs: startup / 1000,
    busyMs: busy / 1000,
    totalMs: total / 1000,
    groups: [...groups]
      .map(([group, us]) => ({ group, ms: us / 1000, share: busy > 0 ? us / busy : 0 }))
      .sort((a, b) => b.ms - a.ms),
  };
}

export function renderProfile(s: ReturnType<typeof summarise>, context: string): string {
  const writes = s.groups.filter((g) => g.group.startsWith('socket writes')).reduce((t, g) => t + g.share, 0);
  const rows = s.groups.slice(0, 30).map((g) => `| ${g.group} | ${(g.share * 100).toFixed(1)}% | ${g.ms.toFixed(0)} |`);
  return [
    '## Where the backbone process\'s CPU goes (`npm run bench:profile`)',
    '',
    context,
    '',
    `Busy ${(s.busyMs / 1000).toFixed(1)} s of ${(s.totalMs / 1000).toFixed(1)} s profiled, start-up (module loading, ${(s.startupMs / 1000).toFixed(1)} s) and idle time left out. Socket writes together: **${(writes * 100).toFixed(1)}%** of the busy time.`,
    '',
    '| self time spent in | share of busy | ms |',
    '| --- | ---: | ---: |',
    ...rows,
    '',
    'A V8 CPU profile (`node --cpu-prof`, sampling) of the backbone process over the whole run, warm-up included. ' +
      'A socket write is a system call; on loopback the kernel runs the receiving side of TCP inside it too, so its cost per write is higher here than between machines. ' +
      'Fewer writes per job (one per engine per batch, not per operation) is what moves this group.',
    '',
  ].join('\n');
}

/** The main-thread profile in `dir`: the largest .cpuprofile (worker threads' profiles are small). */
function mainProfile(dir: string): string {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length === 0) throw new Error(`no .cpuprofile in ${dir}`);
  return join(dir, files.sort((a, b) => statSync(join(dir, b)).size - statSync(join(dir, a)).size)[0]!);
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const [dir, output, context] = process.argv.slice(2);
  if (!dir || !output) throw new Error('usage: cpu-profile.js <profile dir> <BENCHMARKS.md> [context line]');
  const summary = summarise(JSON.parse(readFileSync(mainProfile(dir), 'utf8')) as CpuProfile);
  const md = renderProfile(summary, context ?? '');
  process.stdout.write(`${md}\n`);
  if (output !== '-') writeSection(output, 'profile', md);
}
