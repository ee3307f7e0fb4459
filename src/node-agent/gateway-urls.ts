// Where the gateway listens, derived from its http(s) base URL. A path prefix on the base (a reverse
// proxy mounting the backbone under /resultity, say) is kept.
export interface GatewayUrls {
  socket: string;
  results: string;
  /** GET: the network config in force (src/node-agent/network-config.ts). */
  config: string;
}

export function gatewayUrls(gatewayUrl: string): GatewayUrls {
  const base = new URL(gatewayUrl);
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new Error(`the gateway URL must be http(s): ${gatewayUrl}`);
  base.search = '';
  base.hash = '';
  if (!base.pathname.endsWith('/')) base.pathname += '/';
  const results = new URL('io/results', base);
  const config = new URL('io/config', base);
  const socket = new URL('io/ws', base);
  socket.protocol = base.protocol === 'https:' ? 'wss:' : 'ws:';
  return { socket: socket.href, results: results.href, config: config.href };
}
