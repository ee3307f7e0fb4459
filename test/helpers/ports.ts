// Loopback ports for the engines a test starts of its own (private-broker.ts, private-ferretdb.ts).
import { createConnection, createServer } from 'node:net';

/** A port free on 127.0.0.1 now (the kernel's choice). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** True when something accepts TCP connections on 127.0.0.1:`port`. */
export function accepting(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection({ port, host: '127.0.0.1' });
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}
