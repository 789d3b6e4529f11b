/**
 * `rampart ca`: a small certificate authority for mutual TLS between clients, the gateway and
 * upstreams (src/pki, `@peculiar/x509`, ECDSA P-256). Files live in one directory (default
 * `./rampart-ca`):
 *
 *   ca.crt / ca.key          the CA (`init`)
 *   NAME.crt / NAME.key      issued certificates (`issue server|client`)
 *   revoked.txt, crl.pem     revoked serials and the CRL signed by the CA (`revoke`)
 *
 * Private keys are written with mode 0600 and never overwritten without `--force`.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { createCa, createCrl, issueCertificate, loadCa, type IssueOptions } from '../pki/ca.ts';
import { clientCertificateOf, normalizeSerial, readPemCertificates } from '../pki/cert.ts';

const collect = (v: string, prev: string[]): string[] => [
  ...prev,
  ...v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
];

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`expected a positive whole number of days, got "${v}"`);
  return n;
}

function writeNew(path: string, text: string, mode: number, force: boolean): void {
  if (!force && existsSync(path)) throw new Error(`${path} exists (use --force to replace it)`);
  writeFileSync(path, text, { mode });
}

function fail(e: unknown): never {
  process.stderr.write(`rampart ca: ${(e as Error).message}\n`);
  process.exit(1);
}

async function openCa(dir: string) {
  const cert = join(dir, 'ca.crt');
  const key = join(dir, 'ca.key');
  if (!existsSync(cert) || !existsSync(key)) throw new Error(`no CA in ${dir} (run "rampart ca init --dir ${dir}" first)`);
  return loadCa(readFileSync(cert, 'utf8'), readFileSync(key, 'utf8'));
}

interface IssueFlags {
  dir: string;
  dns: string[];
  email: string[];
  uri: string[];
  spiffe?: string;
  cn?: string;
  org?: string;
  days?: number;
  out?: string;
  force?: boolean;
  json?: boolean;
}

async function issue(kind: 'server' | 'client', o: IssueFlags): Promise<void> {
  const dir = resolve(o.dir);
  const ca = await openCa(dir);
  const opts: IssueOptions = { kind, dns: o.dns, emails: o.email, uris: o.uri, spiffeId: o.spiffe, commonName: o.cn, validityDays: o.days };
  if (o.org) opts.subject = { O: o.org };
  const c = await issueCertificate(ca, opts);
  const name = o.out ?? (o.cn ?? o.dns[0] ?? o.spiffe?.split('/').pop() ?? kind).replace(/[^A-Za-z0-9._-]/g, '_');
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  writeNew(certFile, c.certPem, 0o644, o.force === true);
  writeNew(keyFile, c.keyPem, 0o600, o.force === true);
  const facts = clientCertificateOf(readPemCertificates(c.certPem)[0] as Buffer);
  const out = {
    kind,
    cert: certFile,
    key: keyFile,
    subject: facts.subject,
    serial: facts.serialNumber,
    not_after: facts.validTo?.toISOString(),
    spiffe_id: facts.spiffeId ?? null,
    dns: facts.dnsNames ?? [],
    'x5t#S256': facts.x5tS256,
  };
  if (o.json) process.stdout.write(`${JSON.stringify(out)}\n`);
  else {
    process.stdout.write(
      `issued ${kind} certificate\n  cert      ${certFile}\n  key       ${keyFile}\n  subject   ${out.subject}\n  serial    ${out.serial}\n  expires   ${out.not_after}\n` +
        (out.spiffe_id ? `  spiffe    ${out.spiffe_id}\n` : '') +
        (out.dns.length ? `  dns       ${out.dns.join(', ')}\n` : '') +
        `  x5t#S256  ${out['x5t#S256']}\n`,
    );
  }
}

/** Registers `ca init`, `ca issue server`, `ca issue client` and `ca revoke` on the program. */
export function register(program: Command): void {
  const ca = program.command('ca').description('a small CA for mutual TLS: CA, server and client certificates, CRL (PEM files)');
  ca.command('init')
    .description('create a CA key and self-signed certificate (ca.crt, ca.key)')
    .option('--dir <dir>', 'CA directory', 'rampart-ca')
    .option('--cn <name>', 'CA common name', 'Rampart CA')
    .option('--days <n>', 'validity in days', positiveInt, 3650)
    .option('--force', 'replace an existing CA')
    .action(async (o: { dir: string; cn: string; days: number; force?: boolean }) => {
      try {
        const dir = resolve(o.dir);
        mkdirSync(dir, { recursive: true });
        const c = await createCa({ commonName: o.cn, validityDays: o.days });
        writeNew(join(dir, 'ca.key'), c.keyPem, 0o600, o.force === true);
        writeNew(join(dir, 'ca.crt'), c.certPem, 0o644, true);
        process.stdout.write(`created CA "${o.cn}"\n  cert  ${join(dir, 'ca.crt')}\n  key   ${join(dir, 'ca.key')} (keep it secret)\n`);
      } catch (e) {
        fail(e);
      }
    });

  const iss = ca.command('issue').description('issue a certificate signed by the CA');
  const common = (c: Command): Command =>
    c
      .option('--dir <dir>', 'CA directory', 'rampart-ca')
      .option('--dns <name>', 'SAN DNS name or IP address (repeatable, comma-separated)', collect, [])
      .option('--email <addr>', 'SAN email (repeatable)', collect, [])
      .option('--uri <uri>', 'SAN URI (repeatable)', collect, [])
      .option('--cn <name>', 'subject common name')
      .option('--org <name>', 'subject organisation')
      .option('--days <n>', 'validity in days', positiveInt)
      .option('--out <name>', 'file name without extension (default: the CN)')
      .option('--force', 'replace existing files')
      .option('--json', 'print the result as JSON');
  common(iss.command('server').description('a server certificate (EKU serverAuth); needs --dns')).action(async (o: IssueFlags) => {
    await issue('server', o).catch(fail);
  });
  common(iss.command('client').description('a client certificate (EKU clientAuth), e.g. --spiffe spiffe://example.org/ns/prod/sa/web --cn web'))
    .option('--spiffe <id>', 'SPIFFE ID (spiffe://trust-domain/path) as the URI SAN')
    .action(async (o: IssueFlags) => {
      await issue('client', o).catch(fail);
    });

  ca.command('revoke')
    .description('revoke certificates by serial number and write the CRL (crl.pem)')
    .argument('[serials...]', 'serial numbers (hex) or certificate files')
    .option('--dir <dir>', 'CA directory', 'rampart-ca')
    .option('--days <n>', 'CRL validity (nextUpdate) in days', positiveInt, 7)
    .action(async (serials: string[], o: { dir: string; days: number }) => {
      try {
        const dir = resolve(o.dir);
        const authority = await openCa(dir);
        const listFile = join(dir, 'revoked.txt');
        const known = existsSync(listFile) ? readFileSync(listFile, 'utf8').split('\n').filter(Boolean) : [];
        const added = serials.map((s) =>
          existsSync(s) ? (clientCertificateOf(readPemCertificates(readFileSync(s, 'utf8'), s)[0] as Buffer).serialNumber as string) : normalizeSerial(s),
        );
        for (const s of added) if (!/^[0-9A-F]+$/.test(s)) throw new Error(`"${s}" is not a hex serial number or a certificate file`);
        const all = [...new Set([...known, ...added])];
        writeFileSync(listFile, all.length ? `${all.join('\n')}\n` : '');
        const crl = await createCrl(authority, { revoked: all, nextUpdate: new Date(Date.now() + o.days * 86_400_000) });
        writeFileSync(join(dir, 'crl.pem'), crl);
        process.stdout.write(`CRL written: ${join(dir, 'crl.pem')} (${all.length} revoked)\n`);
      } catch (e) {
        fail(e);
      }
    });
}
