// The process's logger: JSON lines for machines (a log shipper, `jq`), and pino-pretty's readable lines
// when standard output is a terminal, so that a person running `resultity serve` or the demo reads
// messages rather than JSON (and the demo's banner is not buried). LOG_FORMAT=json|pretty overrides the
// guess. Every line written during a request carries its request id and, once there is one, its job id
// (common/log-context.ts).
import { pino, type Logger, type LoggerOptions } from 'pino';
import pretty from 'pino-pretty';
import { logContextMixin } from './log-context.js';

export function createLogger(level: string, opts: { name?: string; format?: string } = {}): Logger {
  const format = opts.format ?? (process.env.LOG_FORMAT || (process.stdout.isTTY ? 'pretty' : 'json'));
  const options: LoggerOptions<never> = { level, mixin: logContextMixin, ...(opts.name ? { name: opts.name } : {}) };
  if (format !== 'pretty') return pino(options);
  // In-process and synchronous (no worker thread): a crash's last lines are not lost.
  return pino(options, pretty({ colorize: true, sync: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' }));
}
