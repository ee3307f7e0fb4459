// Writing to and closing the agent's socket to the gateway, apart from the session logic (agent.ts) that
// decides when.
import { WebSocket } from 'ws';

/** Resolves true once the message is written to the socket, false when it could not be. */
export function sendJson(ws: WebSocket, message: object): Promise<boolean> {
  if (ws.readyState !== WebSocket.OPEN) return Promise.resolve(false);
  return new Promise((resolve) => {
    ws.send(JSON.stringify(message), (err) => resolve(!err));
  });
}

/** Closes cleanly, or terminates when the gateway does not complete the closing handshake within `graceMs`. */
export async function closeSocket(ws: WebSocket | undefined, reason: string, graceMs = 2_000): Promise<void> {
  if (!ws || ws.readyState === WebSocket.CLOSED) return;
  if (ws.readyState === WebSocket.CONNECTING) {
    ws.terminate();
    return;
  }
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      ws.terminate();
      resolve();
    }, graceMs);
    ws.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    ws.close(1000, reason);
  });
}
