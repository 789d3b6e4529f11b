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
    if (!c) return undefined;
    const accounts = [...upstream.data.accounts.values()].filter((a) => a.user_id === c.user_id).map((a) => String(a.id));
    return { user_id: String(c.user_id), roles: c.roles, accounts };
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
      -d resource=https://accounts.demo.rampart -d 'scope=accounts:read accounts:write' ${idp.tokenEndpoint} | sed 's/.*"access_token":"\\([^"]*\\)".*/\\1/')
  curl -s ${G}/users/1002 -H "Authorization: Bearer $TOKEN"
  curl -si ${G}/users/1002                       # 401 without a token: WWW-Authenticate: Bearer

What the gateway stops (with $TOKEN from alice-app, user 1002):
  curl -si ${G}/users/1003 -H "Authorization: Bearer $TOKEN"        # 403 BOLA: another user's record
  curl -si ${G}/accounts/5001 -H "Authorization: Bearer $TOKEN"     # 403 BOLA, checked on the response
  curl -s  ${G}/users/1002 -H "Authorization: Bearer $TOKEN"        # only documented fields (no password_hash, ssn)
  curl -s  ${G}/users/1002/tax-profile -H "Authorization: Bearer $TOKEN"   # SSN and card redacted (DLP)
  curl -si ${G}/debug/config -H "Authorization: Bearer $TOKEN"      # 404: undocumented endpoint
  curl -si -X DELETE ${G}/users/1010 -H "Authorization: Bearer $TOKEN"     # 403: admin scope required (BFLA)
  curl -si ${G}/users -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \\
       -d '{"name":"Eve","email":"eve@example.com","role":"admin"}'  # 400: mass assignment
  curl -si "${G}/users?limit=10000" -H "Authorization: Bearer $TOKEN"   # 400: limit must be <= 100
  curl -si "${G}/users?limit=50" -H "Authorization: Bearer $TOKEN"      # 403: bulk extraction (DLP caps records)
  curl -si ${G}/users -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \\
       -d "{\\"name\\":\\"x' OR '1'='1\\",\\"email\\":\\"eve@example.com\\"}"   # 403: SQL injection
  seq 300 | xargs -P 20 -I{} curl -s -o /dev/null -w '%{http_code}\\n' ${G}/users/1002 -H "Authorization: Bearer $TOKEN" | sort | uniq -c   # 429s (limit 50/s)

Try:
  curl -s ${G}/health
  curl -si ${G}/nothing/../etc/passwd --path-as-is   # 400 problem details: path not normalized
  curl -s ${gw.adminUrl}/metrics | grep rampart_requests_total

Security events are JSON lines on this terminal's stdout (type "security_event") and in
.rampart/events.db (SQLite). Ctrl-C stops.
`);
