/**
 * Demo upstream: a small "accounts" service (users, bank accounts, transactions, transfers) built
 * on bare `node:http`, used by the examples, the tests and the benchmarks as the API that Rampart
 * protects.
 *
 * THIS SERVICE IS DELIBERATELY VULNERABLE. Every flaw below is one that a Rampart control stops;
 * never copy it into a real service:
 *
 * - BOLA: `GET /users/{id}`, `GET /users/{id}/accounts`, `GET /users/{id}/tax-profile`,
 *   `GET /accounts/{id}`, `GET /accounts/{id}/transactions` and `POST /transfers` serve any record
 *   to any caller (identity headers added by a gateway are ignored).
 * - Excessive data exposure: user bodies carry `role`, `password_hash`, `internal_notes`, `ssn`
 *   and `risk_score`, none of which `examples/openapi.yaml` declares.
 * - Sensitive data: the tax profile carries a valid-format US SSN and a Luhn-valid card number;
 *   accounts carry IBANs; `GET /gzip` sends an SSN inside a gzip-encoded body.
 * - Shadow endpoints: `GET /debug/config` (fake secrets), `GET /export/users` (every user with
 *   full PII) and the test endpoints are not in the OpenAPI document.
 * - Unbounded extraction: `GET /users?limit=` accepts up to 10000 (the contract says 100).
 * - Mass assignment: `POST /users` copies every body property onto the stored user
 *   (`"role": "admin"` works).
 * - Business logic: `POST /transfers` accepts a negative `amount` (money moves backwards) and
 *   never checks that the caller owns `from_account`.
 * - Broken function-level authorization: `GET /admin/users` and `DELETE /users/{id}` are
 *   admin-only per the contract, but nothing is checked here.
 * - Fingerprinting: every response carries `X-Powered-By: demo-express/4.18` and
 *   `Server: demo-accounts/1.0`.
 *
 * The data set is synthetic (`@faker-js/faker`, fixed seed {@link DEMO_SEED}, fixed reference
 * date), so every start serves the same 50 users (ids 1001..1050). Mutations (POST/DELETE) only
 * change the instance they were sent to.
 *
 * Run directly: `node examples/demo-upstream.ts [--port 3000] [--host 127.0.0.1]` prints
 * `demo-upstream listening on http://127.0.0.1:3000`.
 */
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { base, en, en_US, Faker } from '@faker-js/faker';

/** Seed of the synthetic data set (passed to `faker.seed`). */
export const DEMO_SEED = 42;

/** Reference "now" of the synthetic data set, so generated dates do not drift between runs. */
export const DEMO_REF_DATE = '2025-01-01T00:00:00.000Z';

/** First user id; users are numbered `DEMO_FIRST_USER_ID .. DEMO_FIRST_USER_ID + DEMO_USER_COUNT - 1`. */
export const DEMO_FIRST_USER_ID = 1001;

/** Number of generated users. */
export const DEMO_USER_COUNT = 50;

/** First account id; accounts are numbered consecutively from here. */
export const DEMO_FIRST_ACCOUNT_ID = 5001;

/** Upper bound of `?limit=` on list endpoints (values above it are clamped to it). */
export const DEMO_MAX_LIMIT = 10_000;

/** Largest JSON request body accepted by the JSON endpoints, in bytes (larger: 413). */
export const DEMO_MAX_JSON_BYTES = 1024 * 1024;

/** A postal address (US-style). */
export interface DemoAddress {
  street: string;
  city: string;
  /** Two-letter US state code. */
  state: string;
  postal_code: string;
  /** ISO 3166-1 alpha-2 country code. */
  country: string;
}

/**
 * A stored user. Only `id`, `name`, `email`, `phone` and `address` are public per the OpenAPI
 * document; the rest is internal and over-exposed by this service on purpose. Users created with
 * `POST /users` may carry any extra properties (mass assignment).
 */
export interface DemoUser {
  /** Integer id, 1001.. for generated users. */
  id: number;
  name: string;
  /** Email at an example.* domain (never a real mailbox). */
  email: string;
  /** US national format, e.g. `(642) 612-3471`. */
  phone: string | null;
  address: DemoAddress | null;
  /** `admin` for user 1001, `customer` for the others (unless mass-assigned). */
  role: string;
  /** bcrypt-shaped string (`$2b$12$` + 53 chars); not a hash of anything. */
  password_hash: string;
  internal_notes: string;
  /** US SSN `AAA-GG-SSSS` (area not 000/666/9xx, group not 00, serial not 0000). */
  ssn: string | null;
  /** Fraud risk score, integer 0..100. */
  risk_score: number;
  [extra: string]: unknown;
}

/** A bank account owned by one user. */
export interface DemoAccount {
  /** Integer id, 5001.. */
  id: number;
  user_id: number;
  type: 'checking' | 'savings' | 'credit';
  /** ISO 4217 code: USD, EUR or GBP. */
  currency: string;
  /** Current balance in major units (2 decimals). */
  balance: number;
  /** Electronic IBAN (no spaces), valid checksum. */
  iban: string;
  status: 'active' | 'frozen';
  /** ISO 8601 date-time. */
  opened_at: string;
}

/** One ledger entry of an account. */
export interface DemoTransaction {
  /** Integer id, 900001.. */
  id: number;
  account_id: number;
  /** Positive amount in major units (2 decimals); `direction` says which way it moved. */
  amount: number;
  currency: string;
  direction: 'debit' | 'credit';
  description: string;
  counterparty: string;
  /** ISO 8601 date-time. */
  created_at: string;
  /** Set on the two entries written by a transfer. */
  transfer_id?: number;
}

/** The tax profile of a user (`GET /users/{id}/tax-profile`). */
export interface DemoTaxProfile {
  user_id: number;
  name: string;
  /** US SSN `AAA-GG-SSSS`, valid format. */
  ssn: string;
  /** Card number in 4-digit groups separated by spaces, e.g. `4242 4242 4242 4242`; passes Luhn. */
  card_number: string;
  tax_year: number;
  filing_status: 'single' | 'married_joint' | 'married_separate' | 'head_of_household';
  /** Annual income in USD (whole dollars). */
  annual_income: number;
}

/** A transfer as answered by `POST /transfers`. */
export interface DemoTransfer {
  /** Integer id, 700001.. */
  id: number;
  from_account: number;
  to_account: number;
  /** Amount in major units as sent (may be negative: deliberate flaw). */
  amount: number;
  currency: string;
  status: 'completed';
  /** ISO 8601 date-time. */
  created_at: string;
}

/** The fake secrets served by `GET /debug/config`. None of them is real. */
export interface DemoDebugConfig {
  service: string;
  version: string;
  environment: string;
  aws: { access_key_id: string; secret_access_key: string; region: string };
  /** `postgres://user:password@host:5432/db`, with a password. */
  database_url: string;
  jwt_signing_secret: string;
  feature_flags: Record<string, boolean>;
}

/** The in-memory data set of one upstream instance. */
export interface DemoData {
  /** Users by id, in id order. */
  users: Map<number, DemoUser>;
  /** Accounts by id, in id order. */
  accounts: Map<number, DemoAccount>;
  /** Ledger of each account by account id, newest first. */
  transactions: Map<number, DemoTransaction[]>;
  /** Tax profiles by user id. */
  taxProfiles: Map<number, DemoTaxProfile>;
  debugConfig: DemoDebugConfig;
  nextUserId: number;
  nextTransactionId: number;
  nextTransferId: number;
}

/** Options of {@link startDemoUpstream}. */
export interface DemoUpstreamOptions {
  /** Interface to bind; default `127.0.0.1`. */
  host?: string;
  /** TCP port; default 0 (a random free port). */
  port?: number;
}

/** A running demo upstream. */
export interface DemoUpstream {
  /** Base URL without trailing slash, e.g. `http://127.0.0.1:43121`. */
  url: string;
  /** The bound TCP port. */
  port: number;
  /** The live data set (tests may inspect or change it). */
  data: DemoData;
  /** Stops listening, drops open connections and pending `/slow` timers; resolves when closed. */
  close(): Promise<void>;
}

const BCRYPT_ALPHABET = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const AWS_KEY_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

const INTERNAL_NOTES = [
  'KYC documents verified by branch staff.',
  'VIP customer: waive overdraft fees, escalate complaints to relationship manager.',
  'Disputed two card charges last quarter; chargeback granted.',
  'Possible synthetic identity; keep under enhanced monitoring.',
  'Do not extend further credit until collections case closes.',
  'Customer requested paper statements only.',
  'Linked to SAR filed with compliance team.',
  'Password reset by support after identity check over the phone.',
];

const FILING_STATUSES: DemoTaxProfile['filing_status'][] = ['single', 'married_joint', 'married_separate', 'head_of_household'];

/** Luhn check digit (0..9) for a string of digits without its check digit. */
function luhnCheckDigit(payload: string): number {
  let sum = 0;
  // The check digit is appended at the right, so the rightmost payload digit is doubled.
  for (let i = 0; i < payload.length; i++) {
    let d = payload.charCodeAt(payload.length - 1 - i) - 48;
    if (i % 2 === 0) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return (10 - (sum % 10)) % 10;
}

/** A valid-format US SSN: area 001..899 except 666, group 01..99, serial 0001..9999. */
function fakeSsn(f: Faker): string {
  let area = f.number.int({ min: 1, max: 899 });
  if (area === 666) area = 667;
  const group = f.number.int({ min: 1, max: 99 });
  const serial = f.number.int({ min: 1, max: 9999 });
  return `${String(area).padStart(3, '0')}-${String(group).padStart(2, '0')}-${String(serial).padStart(4, '0')}`;
}

/** A 16-digit Visa or Mastercard number that passes Luhn, grouped `dddd dddd dddd dddd`. */
function fakeCardNumber(f: Faker): string {
  const prefix = f.helpers.arrayElement(['4', '4', '51', '52', '53', '54', '55']);
  const payload = prefix + f.string.numeric({ length: 15 - prefix.length, allowLeadingZeros: true });
  const digits = payload + String(luhnCheckDigit(payload));
  return digits.replace(/(\d{4})(?=\d)/g, '$1 ');
}

/** Money with 2 decimals in [min, max]. */
function money(f: Faker, min: number, max: number): number {
  return Math.round(f.number.float({ min, max }) * 100) / 100;
}

/**
 * Builds the synthetic data set: {@link DEMO_USER_COUNT} users with 1..3 accounts each and
 * 3..8 transactions per account, a tax profile per user, and the fake debug config.
 * Deterministic for a given seed (own `Faker` instance; the global `faker` is not touched).
 *
 * @param seed faker seed; default {@link DEMO_SEED}.
 */
export function generateDemoData(seed: number = DEMO_SEED): DemoData {
  const f = new Faker({ locale: [en_US, en, base] });
  f.seed(seed);
  f.setDefaultRefDate(new Date(DEMO_REF_DATE));

  const users = new Map<number, DemoUser>();
  const accounts = new Map<number, DemoAccount>();
  const transactions = new Map<number, DemoTransaction[]>();
  const taxProfiles = new Map<number, DemoTaxProfile>();
  let accountId = DEMO_FIRST_ACCOUNT_ID;
  let transactionId = 900_001;

  for (let i = 0; i < DEMO_USER_COUNT; i++) {
    const id = DEMO_FIRST_USER_ID + i;
    const firstName = f.person.firstName();
    const lastName = f.person.lastName();
    const name = `${firstName} ${lastName}`;
    const user: DemoUser = {
      id,
      name,
      email: f.internet.exampleEmail({ firstName, lastName }).toLowerCase(),
      phone: f.phone.number({ style: 'national' }),
      address: {
        street: f.location.streetAddress(),
        city: f.location.city(),
        state: f.location.state({ abbreviated: true }),
        postal_code: f.location.zipCode('#####'),
        country: 'US',
      },
      role: i === 0 ? 'admin' : 'customer',
      password_hash: `$2b$12$${f.string.fromCharacters(BCRYPT_ALPHABET, 53)}`,
      internal_notes: f.helpers.arrayElement(INTERNAL_NOTES),
      ssn: fakeSsn(f),
      risk_score: f.number.int({ min: 0, max: 100 }),
    };
    users.set(id, user);

    taxProfiles.set(id, {
      user_id: id,
      name,
      ssn: user.ssn as string,
      card_number: fakeCardNumber(f),
      tax_year: 2024,
      filing_status: f.helpers.arrayElement(FILING_STATUSES),
      annual_income: f.number.int({ min: 18_000, max: 450_000 }),
    });

    const accountCount = f.number.int({ min: 1, max: 3 });
    for (let a = 0; a < accountCount; a++) {
      const type = f.helpers.arrayElement(['checking', 'savings', 'credit'] as const);
      const currency = f.helpers.arrayElement(['USD', 'USD', 'USD', 'USD', 'EUR', 'GBP']);
      const account: DemoAccount = {
        id: accountId,
        user_id: id,
        type,
        currency,
        balance: money(f, 50, 25_000),
        iban: f.finance.iban({ countryCode: currency === 'GBP' ? 'GB' : 'DE', formatted: false }),
        status: f.number.int({ min: 1, max: 20 }) === 1 ? 'frozen' : 'active',
        opened_at: f.date.past({ years: 8 }).toISOString(),
      };
      accounts.set(accountId, account);

      const ledger: DemoTransaction[] = [];
      const txCount = f.number.int({ min: 3, max: 8 });
      for (let t = 0; t < txCount; t++) {
        const direction = f.number.int({ min: 1, max: 4 }) === 1 ? 'credit' : 'debit';
        const counterparty = f.company.name();
        ledger.push({
          id: transactionId++,
          account_id: accountId,
          amount: money(f, 1, 2_500),
          currency,
          direction,
          description:
            direction === 'credit'
              ? f.helpers.arrayElement(['Salary', 'Refund', 'Incoming transfer', 'Interest'])
              : f.helpers.arrayElement(['Card payment', 'Direct debit', 'Online purchase', 'ATM withdrawal']),
          counterparty,
          created_at: f.date.recent({ days: 120 }).toISOString(),
        });
      }
      ledger.sort((x, y) => (x.created_at < y.created_at ? 1 : -1));
      transactions.set(accountId, ledger);
      accountId++;
    }
  }

  const debugConfig: DemoDebugConfig = {
    service: 'accounts',
    version: '1.0.3',
    environment: 'production',
    aws: {
      access_key_id: `AKIA${f.string.fromCharacters(AWS_KEY_ALPHABET, 16)}`,
      secret_access_key: f.string.fromCharacters('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/', 40),
      region: 'us-east-1',
    },
    database_url: `postgres://accounts_svc:${f.internet.password({ length: 18 })}@db-primary.accounts.internal:5432/accounts`,
    jwt_signing_secret: f.string.hexadecimal({ length: 64, casing: 'lower', prefix: '' }),
    feature_flags: { instant_transfers: true, legacy_export: true, debug_endpoints: true },
  };

  return {
    users,
    accounts,
    transactions,
    taxProfiles,
    debugConfig,
    nextUserId: DEMO_FIRST_USER_ID + DEMO_USER_COUNT,
    nextTransactionId: transactionId,
    nextTransferId: 700_001,
  };
}

/** An error answered as `{ error, message }` JSON with `status`. */
class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly headers: Record<string, string>;

  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

/** Per-request state handed to route handlers. */
interface Exchange {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  /** Captures of the route pattern (path parameters), in order. */
  params: string[];
  data: DemoData;
  /** Timers to clear on close (`/slow`). */
  timers: Set<NodeJS.Timeout>;
}

type Handler = (ex: Exchange) => void | Promise<void>;

interface Route {
  pattern: RegExp;
  methods: Record<string, Handler>;
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const payload = Buffer.from(JSON.stringify(body));
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(payload.length),
  });
  res.end(payload);
}

function parseId(raw: string, what: string): number {
  if (!/^\d{1,15}$/.test(raw)) throw new HttpError(400, 'invalid_id', `${what} id must be an integer`);
  return Number(raw);
}

/** Parses `?name=` as a non-negative integer in [min, max] (clamped above), or `fallback` when absent. */
function intParam(url: URL, name: string, fallback: number, min: number, max: number): number {
  const raw = url.searchParams.get(name);
  if (raw === null || raw === '') return fallback;
  if (!/^\d{1,15}$/.test(raw) || Number(raw) < min) {
    throw new HttpError(400, 'invalid_parameter', `${name} must be an integer >= ${min}`);
  }
  return Math.min(Number(raw), max);
}

function page<T>(url: URL, all: T[]): { items: T[]; total: number; limit: number; offset: number } {
  const limit = intParam(url, 'limit', 20, 1, DEMO_MAX_LIMIT);
  const offset = intParam(url, 'offset', 0, 0, Number.MAX_SAFE_INTEGER);
  return { items: all.slice(offset, offset + limit), total: all.length, limit, offset };
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > DEMO_MAX_JSON_BYTES) {
      throw new HttpError(413, 'payload_too_large', `JSON bodies are limited to ${DEMO_MAX_JSON_BYTES} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') throw new HttpError(400, 'invalid_json', 'request body is empty');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, 'invalid_json', `request body is not valid JSON: ${(err as Error).message}`);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function getUser(data: DemoData, rawId: string): DemoUser {
  const user = data.users.get(parseId(rawId, 'user'));
  if (!user) throw new HttpError(404, 'not_found', `user ${rawId} not found`);
  return user;
}

function getAccount(data: DemoData, rawId: string): DemoAccount {
  const account = data.accounts.get(parseId(rawId, 'account'));
  if (!account) throw new HttpError(404, 'not_found', `account ${rawId} not found`);
  return account;
}

async function createUser({ req, res, data }: Exchange): Promise<void> {
  const body = await readJson(req);
  if (!isObject(body)) throw new HttpError(400, 'validation_error', 'body must be a JSON object');
  if (typeof body.name !== 'string' || typeof body.email !== 'string') {
    throw new HttpError(400, 'validation_error', 'name and email are required strings');
  }
  const id = data.nextUserId++;
  // FLAW (mass assignment): every property of the body lands on the stored record.
  const user: DemoUser = {
    id,
    name: body.name,
    email: body.email,
    phone: null,
    address: null,
    role: 'customer',
    password_hash: `$2b$12$${createHash('sha512').update(`user:${id}`).digest('base64').replace(/\+/g, '.').slice(0, 53)}`,
    internal_notes: '',
    ssn: null,
    risk_score: 50,
    ...body,
  };
  user.id = id;
  data.users.set(id, user);
  sendJson(res, 201, user, { location: `/users/${id}` });
}

async function createTransfer({ req, res, data }: Exchange): Promise<void> {
  const body = await readJson(req);
  if (!isObject(body)) throw new HttpError(400, 'validation_error', 'body must be a JSON object');
  const { from_account, to_account, amount, currency } = body;
  if (!Number.isInteger(from_account) || !Number.isInteger(to_account)) {
    throw new HttpError(400, 'validation_error', 'from_account and to_account must be integers');
  }
  if (typeof amount !== 'number' || !Number.isFinite(amount)) {
    throw new HttpError(400, 'validation_error', 'amount must be a number');
  }
  if (typeof currency !== 'string') throw new HttpError(400, 'validation_error', 'currency must be a string');
  const from = data.accounts.get(from_account as number);
  const to = data.accounts.get(to_account as number);
  if (!from || !to) throw new HttpError(404, 'not_found', 'account not found');
  if (from.id === to.id) throw new HttpError(422, 'same_account', 'cannot transfer to the same account');
  // Only the source account's currency is checked; the target is credited at par (demo only).
  if (currency !== from.currency) {
    throw new HttpError(422, 'currency_mismatch', `currency must be ${from.currency}, the currency of from_account`);
  }
  // FLAW: no ownership check, and a negative amount passes the funds check and moves money back.
  if (amount > from.balance) throw new HttpError(422, 'insufficient_funds', 'insufficient funds');
  const cents = Math.round(amount * 100);
  from.balance = (Math.round(from.balance * 100) - cents) / 100;
  to.balance = (Math.round(to.balance * 100) + cents) / 100;
  const createdAt = new Date().toISOString();
  const transfer: DemoTransfer = {
    id: data.nextTransferId++,
    from_account: from.id,
    to_account: to.id,
    amount,
    currency,
    status: 'completed',
    created_at: createdAt,
  };
  const entry = (account: DemoAccount, direction: 'debit' | 'credit', other: DemoAccount): DemoTransaction => ({
    id: data.nextTransactionId++,
    account_id: account.id,
    amount: Math.abs(amount),
    currency,
    direction,
    description: 'Transfer',
    counterparty: `account ${other.id}`,
    created_at: createdAt,
    transfer_id: transfer.id,
  });
  data.transactions.get(from.id)?.unshift(entry(from, amount >= 0 ? 'debit' : 'credit', to));
  data.transactions.get(to.id)?.unshift(entry(to, amount >= 0 ? 'credit' : 'debit', from));
  sendJson(res, 201, transfer, { location: `/transfers/${transfer.id}` });
}

function slow({ url, res, timers }: Exchange): Promise<void> {
  const ms = intParam(url, 'ms', 1000, 0, 120_000);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (!res.destroyed) sendJson(res, 200, { slept_ms: ms });
      resolve();
    }, ms);
    timers.add(timer);
    res.on('close', () => {
      clearTimeout(timer);
      timers.delete(timer);
      resolve();
    });
  });
}

function echo({ req, res }: Exchange): void {
  const headers: Record<string, string> = {
    'content-type': req.headers['content-type'] ?? 'application/octet-stream',
  };
  if (req.headers['content-length'] !== undefined) headers['content-length'] = req.headers['content-length'];
  res.writeHead(200, headers);
  req.pipe(res);
}

async function upload({ req, res }: Exchange): Promise<void> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of req) {
    bytes += (chunk as Buffer).length;
    hash.update(chunk as Buffer);
  }
  sendJson(res, 200, { bytes, sha256: hash.digest('hex') });
}

const BIG_CHUNK = Buffer.alloc(64 * 1024, 'abcdefghijklmnopqrstuvwxyz0123456789\n');

async function big({ url, res }: Exchange): Promise<void> {
  const total = intParam(url, 'bytes', 1024 * 1024, 0, 1024 * 1024 * 1024);
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) });
  let left = total;
  while (left > 0 && !res.destroyed) {
    const n = Math.min(left, BIG_CHUNK.length);
    left -= n;
    if (!res.write(n === BIG_CHUNK.length ? BIG_CHUNK : BIG_CHUNK.subarray(0, n))) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          res.off('drain', done);
          res.off('close', done);
          resolve();
        };
        res.on('drain', done);
        res.on('close', done);
      });
    }
  }
  res.end();
}

function gzip({ res, data }: Exchange): void {
  const user = data.users.get(DEMO_FIRST_USER_ID + 1) ?? [...data.users.values()][0];
  const payload = gzipSync(JSON.stringify({ id: user?.id, name: user?.name, ssn: user?.ssn ?? '123-45-6789', note: 'gzip-encoded body' }));
  res.writeHead(200, {
    'content-type': 'application/json; charset=utf-8',
    'content-encoding': 'gzip',
    'content-length': String(payload.length),
    vary: 'accept-encoding',
  });
  res.end(payload);
}

const ROUTES: Route[] = [
  { pattern: /^\/health$/, methods: { GET: ({ res }) => sendJson(res, 200, { status: 'ok' }) } },
  {
    pattern: /^\/users$/,
    methods: {
      // FLAW: limit up to 10000 and full records (bulk extraction).
      GET: ({ res, url, data }) => sendJson(res, 200, page(url, [...data.users.values()])),
      POST: createUser,
    },
  },
  {
    pattern: /^\/users\/([^/]+)$/,
    methods: {
      // FLAW (BOLA + over-exposure): any caller gets any user, internal fields included.
      GET: ({ res, params, data }) => sendJson(res, 200, getUser(data, params[0] as string)),
      // FLAW (function-level authz): admin-only per the contract, nothing checked.
      DELETE: ({ res, params, data }) => {
        const user = getUser(data, params[0] as string);
        data.users.delete(user.id);
        data.taxProfiles.delete(user.id);
        res.writeHead(204);
        res.end();
      },
    },
  },
  {
    pattern: /^\/users\/([^/]+)\/accounts$/,
    methods: {
      GET: ({ res, url, params, data }) => {
        const user = getUser(data, params[0] as string);
        sendJson(
          res,
          200,
          page(
            url,
            [...data.accounts.values()].filter((a) => a.user_id === user.id),
          ),
        );
      },
    },
  },
  {
    pattern: /^\/users\/([^/]+)\/tax-profile$/,
    methods: {
      GET: ({ res, params, data }) => {
        const user = getUser(data, params[0] as string);
        const profile = data.taxProfiles.get(user.id);
        if (!profile) throw new HttpError(404, 'not_found', `user ${user.id} has no tax profile`);
        sendJson(res, 200, profile);
      },
    },
  },
  {
    pattern: /^\/accounts\/([^/]+)$/,
    methods: { GET: ({ res, params, data }) => sendJson(res, 200, getAccount(data, params[0] as string)) },
  },
  {
    pattern: /^\/accounts\/([^/]+)\/transactions$/,
    methods: {
      GET: ({ res, url, params, data }) => {
        const account = getAccount(data, params[0] as string);
        sendJson(res, 200, page(url, data.transactions.get(account.id) ?? []));
      },
    },
  },
  { pattern: /^\/transfers$/, methods: { POST: createTransfer } },
  {
    pattern: /^\/admin\/users$/,
    methods: {
      GET: ({ res, data }) => {
        const items = [...data.users.values()];
        sendJson(res, 200, { items, total: items.length });
      },
    },
  },
  // Undocumented ("shadow") endpoints.
  { pattern: /^\/debug\/config$/, methods: { GET: ({ res, data }) => sendJson(res, 200, data.debugConfig) } },
  {
    pattern: /^\/export\/users$/,
    methods: { GET: ({ res, data }) => sendJson(res, 200, [...data.users.values()]) },
  },
  // Test endpoints for gateway behaviour (timeouts, streaming, bodies, encodings).
  { pattern: /^\/slow$/, methods: { GET: slow } },
  { pattern: /^\/echo$/, methods: { POST: echo, PUT: echo } },
  {
    pattern: /^\/echo-headers$/,
    methods: {
      GET: ({ req, res }) =>
        sendJson(res, 200, req.headers, {
          'x-received-method': req.method ?? '',
          'x-received-url': req.url ?? '',
        }),
    },
  },
  { pattern: /^\/upload$/, methods: { POST: upload, PUT: upload } },
  { pattern: /^\/big$/, methods: { GET: big } },
  { pattern: /^\/gzip$/, methods: { GET: gzip } },
];

function decodeParam(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new HttpError(400, 'invalid_path', 'malformed percent-encoding in path');
  }
}

async function handle(req: IncomingMessage, res: ServerResponse, data: DemoData, timers: Set<NodeJS.Timeout>): Promise<void> {
  // FLAW (fingerprinting): framework and server banners.
  res.setHeader('x-powered-by', 'demo-express/4.18');
  res.setHeader('server', 'demo-accounts/1.0');
  const url = new URL(req.url ?? '/', 'http://upstream.invalid');
  const path = url.pathname.length > 1 ? url.pathname.replace(/\/+$/, '') : url.pathname;
  for (const route of ROUTES) {
    const m = route.pattern.exec(path);
    if (!m) continue;
    const method = req.method === 'HEAD' ? 'GET' : (req.method ?? 'GET');
    const handler = route.methods[method];
    if (!handler) {
      const allow = Object.keys(route.methods).join(', ');
      throw new HttpError(405, 'method_not_allowed', `${req.method} not allowed on ${path}`, { allow });
    }
    await handler({ req, res, url, params: m.slice(1).map(decodeParam), data, timers });
    return;
  }
  throw new HttpError(404, 'not_found', `no route for ${req.method} ${path}`);
}

function fail(req: IncomingMessage, res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.destroy(err instanceof Error ? err : undefined);
    return;
  }
  if (err instanceof HttpError) {
    sendJson(res, err.status, { error: err.code, message: err.message }, err.headers);
  } else {
    sendJson(res, 500, { error: 'internal_error', message: (err as Error)?.message ?? String(err) });
  }
  // Unread request bodies would stall keep-alive; drain them.
  if (!req.complete) req.resume();
}

/**
 * Starts the demo accounts service on `opts.host` (default `127.0.0.1`) and `opts.port`
 * (default 0 = random free port), with a fresh copy of the seeded data set.
 *
 * @returns `{ url, port, data, close }`; `url` is `http://host:port` with no trailing slash.
 */
export async function startDemoUpstream(opts: DemoUpstreamOptions = {}): Promise<DemoUpstream> {
  const host = opts.host ?? '127.0.0.1';
  const data = generateDemoData();
  const timers = new Set<NodeJS.Timeout>();
  const server = createServer((req, res) => {
    handle(req, res, data, timers).catch((err: unknown) => fail(req, res, err));
  });
  // Longer than any proxy pool's idle timeout, so the proxy always closes idle sockets first.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : (opts.port ?? 0);
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${port}`,
    port,
    data,
    close: () =>
      new Promise<void>((resolve, reject) => {
        for (const t of timers) clearTimeout(t);
        timers.clear();
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: { port: { type: 'string', default: '3000' }, host: { type: 'string', default: '127.0.0.1' } },
  });
  const upstream = await startDemoUpstream({ host: values.host, port: Number(values.port) });
  console.log(`demo-upstream listening on ${upstream.url}`);
  const stop = (): void => {
    upstream.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
