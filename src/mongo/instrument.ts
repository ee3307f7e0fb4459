// MongoDB's instrumentation for GET /metrics (metrics/engine-metrics.ts declares the series): commands by
// name (driver command monitoring), failed commands and failed server heartbeats.
import type { MongoClient } from 'mongodb';
import { countEngineError, mongoCommands } from '../metrics/engine-metrics.js';
import { mongoCommandLabel } from '../metrics/labels.js';

/** The client must have been created with `monitorCommands: true`. */
export function instrumentMongo(client: MongoClient): void {
  client.on('commandStarted', (event) => mongoCommands.inc({ command: mongoCommandLabel(event.commandName) }));
  client.on('commandFailed', () => countEngineError('mongodb', 'operation'));
  client.on('serverHeartbeatFailed', () => countEngineError('mongodb', 'connection'));
}
