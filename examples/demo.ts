/**
 * `npm start`: the main job on the bundled demo. Starts the demo "accounts" API on
 * 127.0.0.1:3000 and Rampart in front of it from examples/rampart.yaml (gateway on
 * 127.0.0.1:8080, admin on 127.0.0.1:9901), then prints what to try. Ctrl-C drains and stops.
 *
 * Environment: DEMO_PORT (upstream port, default 3000).
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startGateway } from '../src/gateway/gateway.ts';
import { installSignals } from '../src/cli/serve.ts';
import { startDemoUpstream } from './demo-upstream.ts';
import { startOidcProvider } from './oidc-provider.ts';

/** The repository root (works from examples/ and from dist/examples/). */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
}

const root = repoRoot();
const port = Number(process.env.DEMO_PORT ?? 3000);
const upstream = await startDemoUpstream({ host: '127.0.0.1', port });
process.env.DEMO_UPSTREAM = upstream.url;

/** Demo OAuth clients: each acts for one demo user (claim `user_id`), with its scopes. */
export const DEMO_CLIENTS = [
  { client_id: 'alice-app', client_secret: 'alice-secret-0123456789abcdef', user_id: 1002, roles: ['customer'], scope: 'accounts:read accounts:write' },
  { client_id: 'admin-app', client_secret: 'admin-secret-0123456789abcdef', user_id: 1001, roles: ['admin'], scope: 'accounts:read accounts:write admin' },
];
const idp = await startOidcProvider({
  port: Number(process.env.DEMO_IDP_PORT ?? 3001),
  clientId: DEMO_CLIENTS[0]!.client_id,
  clientSecret: DEMO_CLIENTS[0]!.client_secret,
  audience: 'https://accounts.demo.rampart',
  scopes: ['accounts:read', 'accounts:write', 'admin'],
  clients: DEMO_CLIENTS.slice(1).map((c) => ({
    client_id: c.client_id,
    client_secret: c.client_secret,
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
  })),
  extraTokenClaims: (_ctx, token) => {
    const c = DEMO_CLIENTS.find((d) => d.client_id === (token as { clientId?: string }).clientId);
    return c ? { user_id: String(c.user_id), roles: c.roles } : undefined;
  },
});
process.env.DEMO_ISSUER = idp.issuer;
const configFile = join(root, 'examples', 'rampart.yaml');
const gw = await startGateway({ configFile });
installSignals(gw, configFile);

const G = gw.url;
process.stderr.write(`
Rampart is protecting the demo accounts API.

  gateway   ${G}
  admin     ${gw.adminUrl}   (/metrics, /healthz, /readyz)
  upstream  ${upstream.url}   (the unprotected API, for comparison)
  issuer    ${idp.issuer}   (OpenID provider; clients alice-app and admin-app)
  config    ${configFile}   (edit it: Rampart reloads on save)

Get a token (client credentials) and call the API with it:
  TOKEN=$(curl -s -u alice-app:alice-secret-0123456789abcdef -d grant_type=client_credentials \\
      -d resource=https://accounts.demo.rampart -d scope=accounts:read ${idp.tokenEndpoint} | sed 's/.*"access_token":"\\([^"]*\\)".*/\\1/')
  curl -s ${G}/users/1002 -H "Authorization: Bearer $TOKEN"
  curl -si ${G}/users/1002                       # 401 without a token: WWW-Authenticate: Bearer

Try:
  curl -s ${G}/health
  curl -si ${G}/nothing/../etc/passwd --path-as-is   # 400 problem details: path not normalized
  curl -si "${G}/users?name=1'%20OR%20'1'='1"     # 403: SQL injection detected
  curl -s ${gw.adminUrl}/metrics | grep rampart_requests_total

Security events are JSON lines on this terminal's stdout (type "security_event") and in
.rampart/events.db (SQLite). Ctrl-C stops.
`);
