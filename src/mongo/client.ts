// The MongoDB port. The same code runs against MongoDB and FerretDB v1; where FerretDB lacks a feature
// (TTL indexes), callers degrade explicitly and say so (see payloads.repository.ts).
import { MongoClient, type Db } from 'mongodb';
import { instrumentMongo } from './instrument.js';

export interface Mongo {
  client: MongoClient;
  db: Db;
}

/** `appName` tells the server which of the process's clients it talks to (payloads, or the logs' own: app.ts). */
export async function connectMongo(url: string, appName = 'resultity'): Promise<Mongo> {
  // monitorCommands: commands counted by name for GET /metrics; noDelay is the driver's default, stated.
  const client = new MongoClient(url, { serverSelectionTimeoutMS: 5_000, appName, monitorCommands: true, noDelay: true });
  instrumentMongo(client);
  await client.connect();
  // The database is the URL's path; `resultity` when the URL names none.
  const name = new URL(url.replace(/^mongodb(\+srv)?:/, 'http:')).pathname.slice(1) || 'resultity';
  return { client, db: client.db(name) };
}
