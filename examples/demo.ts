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
const configFile = join(root, 'examples', 'rampart.yaml');
const gw = await startGateway({ configFile });
installSignals(gw, configFile);

const G = gw.url;
process.stderr.write(`
Rampart is protecting the demo accounts API.

  gateway   ${G}
  admin     ${gw.adminUrl}   (/metrics, /healthz, /readyz)
  upstream  ${upstream.url}   (the unprotected API, for comparison)
  config    ${configFile}   (edit it: Rampart reloads on save)

Try:
  curl -s ${G}/health
  curl -si ${G}/users/1002                       # upstream fingerprint headers removed, security headers added
  curl -si ${G}/nothing/../etc/passwd --path-as-is   # 400 problem details: path not normalized
  curl -si "${G}/users?name=1'%20OR%20'1'='1"     # 403: SQL injection detected
  curl -s ${gw.adminUrl}/metrics | grep rampart_requests_total

Security events are JSON lines on this terminal's stdout (type "security_event") and in
.rampart/events.db (SQLite). Ctrl-C stops.
`);
