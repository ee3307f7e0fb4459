// The web app (web/: the network explorer and the consumer and operator consoles), served by the
// backbone itself under /app: no second server, no third party. The built files (web/dist, made by the
// set-up step) are read once into memory; hashed assets are cached for good, index.html never without
// revalidation. Every answer carries a strict Content-Security-Policy: scripts, styles, images and
// requests from this origin only, nothing inline, no framing. Paths under /app that name no file and
// have no extension are the app's own routes (/app/console, /app/operator...): they get index.html,
// and the app's router takes over in the browser.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';

export const APP_PATH = '/app';

/**
 * Same-origin everything; no inline script or style, no plugins, no framing, no <base> games.
 * 'wasm-unsafe-eval' lets the page compile WebAssembly (the signature code it shares with the server,
 * libsecp256k1 compiled to WebAssembly) and nothing else: eval and new Function stay refused.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.webmanifest': 'application/manifest+json',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
  '.map': 'application/json',
};

interface WebFile {
  body: Buffer;
  type: string;
  etag: string;
  immutable: boolean;
}

/** Every file under `root`, by its URL path below /app/ ('index.html', 'assets/index-abc123.js'). */
function loadFiles(root: string): Map<string, WebFile> | null {
  try {
    if (!statSync(join(root, 'index.html')).isFile()) return null;
  } catch {
    return null;
  }
  const files = new Map<string, WebFile>();
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile() && !entry.name.startsWith('.')) {
        const body = readFileSync(path);
        const name = relative(root, path).split(sep).join('/');
        files.set(name, {
          body,
          type: TYPES[extname(name)] ?? 'application/octet-stream',
          etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`,
          // Vite names every built asset by its content hash: a new build is a new name.
          immutable: name.startsWith('assets/'),
        });
      }
    }
  };
  walk(root);
  return files;
}

/**
 * Mounts the app on GET /app/*. `root` is the built app (web/dist). A missing build is reported by a 503
 * naming the command that makes it, and looked for again at the next request.
 */
export function webRoutes(app: FastifyInstance, root: string): void {
  let files = loadFiles(root);

  const send = (reply: FastifyReply, ifNoneMatch: string | undefined, file: WebFile, status = 200): FastifyReply => {
    reply.headers(SECURITY_HEADERS).header('content-type', file.type).header('etag', file.etag);
    reply.header('cache-control', file.immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
    if (status === 200 && ifNoneMatch === file.etag) return reply.code(304).send();
    return reply.code(status).send(file.body);
  };

  app.get('/', async (_request, reply) => reply.redirect(`${APP_PATH}/`, 302));
  app.get(APP_PATH, async (_request, reply) => reply.redirect(`${APP_PATH}/`, 301));
  app.get<{ Params: { '*': string } }>(`${APP_PATH}/*`, async (request, reply) => {
    files ??= loadFiles(root);
    if (!files) {
      return reply
        .code(503)
        .headers(SECURITY_HEADERS)
        .header('content-type', 'text/plain; charset=utf-8')
        .send('The web app is not built: run `source scripts/setup.sh; setup_project` (or `npm start`), which builds web/ into web/dist.\n');
    }
    const path = request.params['*'];
    const ifNoneMatch = request.headers['if-none-match'];
    const file = files.get(path === '' ? 'index.html' : path);
    if (file) return send(reply, ifNoneMatch, file);
    // A missing file (a name with an extension, or under assets/) is a 404, not the app: a stale page
    // asking for an asset of an older build must fail loudly rather than run HTML as script.
    if (path.startsWith('assets/') || extname(path) !== '') {
      return reply.code(404).headers(SECURITY_HEADERS).header('content-type', 'text/plain; charset=utf-8').header('cache-control', 'no-store').send('Not found\n');
    }
    return send(reply, ifNoneMatch, files.get('index.html')!);
  });
}
