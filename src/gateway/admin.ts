/**
 * The admin listener: `/metrics` (Prometheus text), `/healthz` (process alive), `/readyz`
 * (configuration loaded and every control ready). Binds to loopback by default; never public.
 * Other modules register further read-only routes (e.g. the passport JWKS).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

/** An admin route handler. */
export type AdminRoute = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

/** Sends a JSON body. */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const s = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s), 'cache-control': 'no-store' });
  res.end(s);
}

/** Creates the admin server over a route table (exact paths, GET/HEAD only). */
export function createAdminServer(routes: Map<string, AdminRoute>): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] as string;
    const route = routes.get(path);
    if (!route) return sendJson(res, 404, { status: 404, title: 'Not Found' });
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendJson(res, 405, { status: 405, title: 'Method Not Allowed' });
    Promise.resolve(route(req, res)).catch(() => {
      if (!res.headersSent) sendJson(res, 500, { status: 500, title: 'Internal Server Error' });
      else res.destroy();
    });
  });
}
