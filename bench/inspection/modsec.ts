/**
 * nginx + ModSecurity v3 + OWASP CRS 4 from Debian's packages, for side-by-side measurements
 * (bench/inspection/crs.ts on the CRS corpus, bench/inspection/benign.ts on legitimate traffic):
 * one nginx process with a server block per paranoia level in front of a static backend, and a raw
 * HTTP/1.1 client that reports the status each request gets.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { type AddressInfo, connect, createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createNetServer();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as AddressInfo).port;
      s.close(() => res(p));
    });
  });
}

/**
 * Starts nginx + ModSecurity + CRS at paranoia levels 1 and 2 in one nginx process (three server
 * blocks: PL1, PL2, and the static backend answering 200). `crsDir` holds `rules/` and
 * `crs-setup.conf.example`. Resolves with the two ports and the process, or a string saying why it
 * could not start (not installed, rules missing, `nginx -t` failed). `extraSetup` adds `SecAction` lines
 * after crs-setup (e.g. {@link API_METHODS}); the CRS corpus runs with the shipped defaults.
 */
/**
 * CRS set up for an API as its own crs-setup.conf.example says to (rule 900200): PUT, PATCH and
 * DELETE allowed besides GET, HEAD, POST and OPTIONS (the shipped default refuses them, rule 911100).
 */
export const API_METHODS = `SecAction "id:900200,phase:1,pass,t:none,nolog,setvar:'tx.allowed_methods=GET HEAD POST OPTIONS PUT PATCH DELETE'"`;

export async function startNginx(crsDir: string, extraSetup: readonly string[] = []): Promise<{ pl1: number; pl2: number; proc: ChildProcess } | string> {
  if (!existsSync('/usr/sbin/nginx')) return 'nginx is not installed';
  const mod = ['/usr/lib/nginx/modules/ngx_http_modsecurity_module.so', '/usr/share/nginx/modules/ngx_http_modsecurity_module.so'].find((p) => existsSync(p));
  if (!mod) return 'libnginx-mod-http-modsecurity is not installed';
  const rules = join(crsDir, 'rules');
  const setup = join(crsDir, 'crs-setup.conf.example');
  if (!existsSync(rules) || !existsSync(setup)) return `CRS rules not found under ${crsDir}`;
  const dir = mkdtempSync(join(tmpdir(), 'rampart-crs-'));
  mkdirSync(join(dir, 'logs'));
  const base = readFileSync('/etc/nginx/modsecurity.conf', 'utf8')
    .replace(/^SecRuleEngine .*/m, 'SecRuleEngine On')
    .replace(/^SecAuditEngine .*/m, 'SecAuditEngine Off')
    .replace(/^SecAuditLog .*/m, `SecAuditLog ${dir}/logs/audit.log`)
    .replace(/^SecDebugLog .*/m, '')
    .replace(/^SecUnicodeMapFile .*/m, 'SecUnicodeMapFile /etc/nginx/unicode.mapping 20127')
    .replace(/^SecResponseBodyAccess .*/m, 'SecResponseBodyAccess Off');
  writeFileSync(join(dir, 'modsecurity.conf'), base);
  const setupText = readFileSync(setup, 'utf8');
  for (const pl of [1, 2]) {
    writeFileSync(
      join(dir, `crs-pl${pl}.conf`),
      [
        `Include ${dir}/modsecurity.conf`,
        setupText,
        `SecAction "id:900000,phase:1,pass,t:none,nolog,setvar:tx.blocking_paranoia_level=${pl}"`,
        `SecAction "id:900001,phase:1,pass,t:none,nolog,setvar:tx.detection_paranoia_level=${pl}"`,
        ...extraSetup,
        `Include ${rules}/*.conf`,
      ].join('\n'),
    );
  }
  const [pl1, pl2, back] = [await freePort(), await freePort(), await freePort()];
  const conf = `
load_module ${mod};
daemon off;
master_process on;
worker_processes 2;
pid ${dir}/nginx.pid;
error_log ${dir}/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  client_max_body_size 20m;
  large_client_header_buffers 8 64k;
  server { listen 127.0.0.1:${back}; location / { return 200 "ok\\n"; } }
  server { listen 127.0.0.1:${pl1}; modsecurity on; modsecurity_rules_file ${dir}/crs-pl1.conf; location / { proxy_ignore_client_abort on; proxy_pass http://127.0.0.1:${back}; } }
  server { listen 127.0.0.1:${pl2}; modsecurity on; modsecurity_rules_file ${dir}/crs-pl2.conf; location / { proxy_ignore_client_abort on; proxy_pass http://127.0.0.1:${back}; } }
}
`;
  writeFileSync(join(dir, 'nginx.conf'), conf);
  try {
    execFileSync('/usr/sbin/nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-t'], { stdio: 'pipe' });
  } catch (e) {
    return `nginx -t failed: ${String((e as { stderr?: Buffer }).stderr ?? e).slice(0, 2000)}`;
  }
  const proc = spawn('/usr/sbin/nginx', ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    if (await probe(pl2)) return { pl1, pl2, proc };
    await new Promise((r) => setTimeout(r, 100));
  }
  proc.kill();
  return 'nginx did not start listening';
}

function probe(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = connect(port, '127.0.0.1');
    s.on('connect', () => {
      s.destroy();
      res(true);
    });
    s.on('error', () => res(false));
  });
}

/** Sends raw bytes, returns the status code of the response (0 when the connection failed) and an optional reason header. */
export function send(port: number, raw: Buffer): Promise<{ status: number; reason: string }> {
  return new Promise((res) => {
    const s = connect(port, '127.0.0.1');
    let buf = '';
    let done = false;
    const finish = (status: number, reason = ''): void => {
      if (done) return;
      done = true;
      s.destroy();
      res({ status, reason });
    };
    s.setTimeout(5000, () => finish(buf ? Number(/^HTTP\/\d\.\d (\d{3})/.exec(buf)?.[1] ?? 0) : 0, 'timeout'));
    s.on('connect', () => s.write(raw)); // no half-close: nginx would treat it as a client abort (499)
    s.on('data', (d) => {
      buf += d.toString('latin1');
      const eoh = buf.indexOf('\r\n\r\n');
      if (eoh !== -1) finish(Number(/^HTTP\/\d\.\d (\d{3})/.exec(buf)?.[1] ?? 0), /\r\nx-reason: ([^\r]*)/i.exec(buf.slice(0, eoh))?.[1] ?? '');
    });
    s.on('end', () => finish(Number(/^HTTP\/\d\.\d (\d{3})/.exec(buf)?.[1] ?? 0)));
    s.on('error', () => finish(0, 'connection error'));
  });
}

export async function runAll(cases: readonly { raw: Buffer }[], port: number, concurrency = 24): Promise<{ status: number; reason: string }[]> {
  const out = new Array<{ status: number; reason: string }>(cases.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < cases.length) {
        const i = next++;
        out[i] = await send(port, (cases[i] as { raw: Buffer }).raw);
      }
    }),
  );
  return out;
}
