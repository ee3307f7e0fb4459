// Redis's instrumentation for GET /metrics (metrics/engine-metrics.ts declares the series): every command
// a client sends, by client and command, and errors.
import type { Cluster, Redis } from 'ioredis';
import { countEngineError, redisCommands } from '../metrics/engine-metrics.js';
import { clientLabel, redisCommandLabel } from '../metrics/labels.js';

/** Counts every command the client sends, pipelines and MULTI blocks included (they go through sendCommand). */
export function instrumentRedis(redis: Redis | Cluster, name: string): void {
  const client = clientLabel(name);
  redis.on('error', () => countEngineError('redis', 'connection'));
  const send = redis.sendCommand.bind(redis);
  redis.sendCommand = (...args: Parameters<Redis['sendCommand']>) => {
    const command = args[0];
    redisCommands.inc({ client, command: redisCommandLabel(command.name) });
    // NOSCRIPT is the script cache asking for the source (client.ts LuaScript), not a failure.
    command.promise.catch((err: unknown) => {
      if (err instanceof Error && err.message.startsWith('NOSCRIPT')) return;
      // A command given up while the server was away fails with one of these: the connection, not the command.
      const lost = err instanceof Error && (err.name === 'MaxRetriesPerRequestError' || /Connection is closed|Stream isn't writeable/.test(err.message));
      countEngineError('redis', lost ? 'connection' : 'operation');
    });
    return send(...args);
  };
}
