/**
 * Syslog sink: security events as RFC 5424 messages over UDP (RFC 5426, one message per
 * datagram) or TCP (RFC 6587 §3.4.1 octet-counting framing), for SIEMs that collect syslog.
 *
 *     <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [rampart@32473 control=".." ...] {json}
 *
 * PRI = facility × 8 + severity (RFC 5424 §6.2.1), event severity mapped critical→2 (crit),
 * high→3 (err), medium→4 (warning), low→5 (notice), info→6 (informational). MSGID is the reason
 * code. The structured-data ID uses the private enterprise number 32473 reserved for
 * documentation (RFC 5612) unless configured. MSG is the event as ASCII-only JSON (MSG-ANY, no BOM).
 * TCP reconnects with backoff and buffers a bounded queue while disconnected (oldest dropped).
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, isIPv6, type Socket } from 'node:net';
import { hostname } from 'node:os';
import type { SecurityEvent, Severity } from '../event.ts';

/** Facility names of RFC 5424 §6.2.1 Table 1 that suit security events. */
export const SYSLOG_FACILITIES: Readonly<Record<string, number>> = {
  auth: 4,
  authpriv: 10,
  daemon: 3,
  security: 13,
  local0: 16,
  local1: 17,
  local2: 18,
  local3: 19,
  local4: 20,
  local5: 21,
  local6: 22,
  local7: 23,
};

const SEVERITY: Readonly<Record<Severity, number>> = { critical: 2, high: 3, medium: 4, low: 5, info: 6 };

/** Options of {@link SyslogSink}. */
export interface SyslogSinkOptions {
  /** `udp` (default) or `tcp`. */
  transport?: 'udp' | 'tcp';
  host: string;
  /** Default 514. */
  port?: number;
  /** Facility name or number 0–23 (default `authpriv`). */
  facility?: string | number;
  /** APP-NAME (default `rampart`). */
  appName?: string;
  /** HOSTNAME (default `os.hostname()`). */
  hostname?: string;
  /** SD-ID enterprise number (default 32473). */
  enterpriseId?: number;
  /** Largest message in bytes; longer ones have their MSG truncated (default 2048 on UDP, 65536 on TCP). */
  maxMessageBytes?: number;
  /** TCP: messages buffered while disconnected (default 1000). */
  maxQueue?: number;
  /** TCP: first reconnect delay in ms (default 500, doubling up to 30000). */
  reconnectMs?: number;
  onError?: (msg: string, data?: object) => void;
}

/** RFC 5424 §6.3.3 PARAM-VALUE escaping: `"`, `\` and `]`. */
function sdValue(v: string): string {
  return v.replace(/["\\\]]/g, '\\$&');
}

/** PRINTUSASCII field (%d33-126), `-` when empty, cut to `max` characters (RFC 5424 §6). */
function field(v: string | undefined, max: number): string {
  if (v === undefined || v === '') return '-';
  const s = v.replace(/[^\x21-\x7e]/g, '_').slice(0, max);
  return s === '' ? '-' : s;
}

/**
 * Formats one event as an RFC 5424 message (no framing).
 * @param facility numeric facility 0–23.
 */
export function formatRfc5424(e: SecurityEvent, opts: { facility: number; appName: string; hostname: string; enterpriseId: number; procId?: string }): string {
  const pri = opts.facility * 8 + SEVERITY[e.severity];
  const sd: [string, string | number | undefined][] = [
    ['control', e.control],
    ['action', e.action],
    ['severity', e.severity],
    ['reason', e.reason],
    ['request_id', e.request_id],
    ['api', e.api],
    ['client_ip', e.client_ip],
    ['identity', e.identity],
    ['status', e.status],
  ];
  let params = '';
  for (const [k, v] of sd) if (v !== undefined) params += ` ${k}="${sdValue(String(v))}"`;
  // ASCII-only JSON: non-ASCII characters as \uXXXX, so MSG needs no BOM (MSG-ANY).
  const msg = JSON.stringify(e).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return `<${pri}>1 ${field(e.time, 64)} ${field(opts.hostname, 255)} ${field(opts.appName, 48)} ${field(opts.procId ?? String(process.pid), 128)} ${field(e.reason, 32)} [rampart@${opts.enterpriseId}${params}] ${msg}`;
}

/** RFC 5424 syslog sink over UDP or TCP. */
export class SyslogSink {
  readonly name: string;
  /** Messages dropped (queue full or send errors). */
  dropped = 0;
  private readonly transport: 'udp' | 'tcp';
  private readonly host: string;
  private readonly port: number;
  private readonly fmt: { facility: number; appName: string; hostname: string; enterpriseId: number };
  private readonly maxBytes: number;
  private readonly maxQueue: number;
  private readonly reconnectMs: number;
  private readonly onError: (msg: string, data?: object) => void;
  private udp: UdpSocket | undefined;
  private tcp: Socket | undefined;
  private connected = false;
  private readonly queue: Buffer[] = [];
  private reconnectTimer: NodeJS.Timeout | undefined;
  private backoff: number;
  private closed = false;
  private pendingUdp = 0;
  private udpIdle: (() => void)[] = [];

  /** @throws {Error} for an unknown facility name or a number outside 0–23. */
  constructor(opts: SyslogSinkOptions) {
    this.transport = opts.transport ?? 'udp';
    this.host = opts.host;
    this.port = opts.port ?? 514;
    const f = typeof opts.facility === 'number' ? opts.facility : SYSLOG_FACILITIES[opts.facility ?? 'authpriv'];
    if (f === undefined || !Number.isInteger(f) || f < 0 || f > 23) throw new Error(`syslog sink: unknown facility ${String(opts.facility)}`);
    this.fmt = { facility: f, appName: opts.appName ?? 'rampart', hostname: opts.hostname ?? hostname(), enterpriseId: opts.enterpriseId ?? 32473 };
    this.maxBytes = opts.maxMessageBytes ?? (this.transport === 'udp' ? 2048 : 65536);
    this.maxQueue = opts.maxQueue ?? 1000;
    this.reconnectMs = opts.reconnectMs ?? 500;
    this.backoff = this.reconnectMs;
    this.onError = opts.onError ?? (() => {});
    this.name = `syslog:${this.transport}://${this.host}:${this.port}`;
    if (this.transport === 'udp') {
      this.udp = createSocket(isIPv6(this.host) ? 'udp6' : 'udp4');
      this.udp.on('error', (e) => this.onError('syslog udp error', { error: e.message }));
      this.udp.unref();
    } else this.connect();
  }

  private connect(): void {
    if (this.closed) return;
    const s = connect({ host: this.host, port: this.port });
    this.tcp = s;
    s.setNoDelay(true);
    s.on('connect', () => {
      this.connected = true;
      this.backoff = this.reconnectMs;
      while (this.queue.length > 0 && this.connected) s.write(this.queue.shift() as Buffer);
    });
    s.on('error', (e) => this.onError('syslog tcp error', { error: e.message }));
    s.on('close', () => {
      this.connected = false;
      if (this.tcp === s) this.tcp = undefined;
      if (this.closed) return;
      this.reconnectTimer = setTimeout(() => {
        this.reconnectTimer = undefined;
        this.connect();
      }, this.backoff);
      this.reconnectTimer.unref();
      this.backoff = Math.min(this.backoff * 2, 30_000);
    });
  }

  private encode(event: SecurityEvent): Buffer {
    let b = Buffer.from(formatRfc5424(event, this.fmt), 'utf8');
    if (b.length > this.maxBytes) b = b.subarray(0, this.maxBytes);
    return b;
  }

  /** Sends (UDP) or queues (TCP) one event; never blocks or throws. */
  write(event: SecurityEvent): void {
    if (this.closed) return;
    const msg = this.encode(event);
    if (this.udp !== undefined) {
      this.pendingUdp++;
      this.udp.send(msg, this.port, this.host, (err) => {
        if (err) this.dropped++;
        this.pendingUdp--;
        if (this.pendingUdp === 0) for (const f of this.udpIdle.splice(0)) f();
      });
      return;
    }
    // RFC 6587 §3.4.1: MSG-LEN SP SYSLOG-MSG.
    const framed = Buffer.concat([Buffer.from(`${msg.length} `), msg]);
    if (this.connected && this.tcp !== undefined) {
      this.tcp.write(framed);
      return;
    }
    if (this.queue.length >= this.maxQueue) {
      this.queue.shift();
      this.dropped++;
    }
    this.queue.push(framed);
  }

  /** Flushes pending messages (TCP: waits for the socket to drain, at most 2 s) and closes. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.udp !== undefined) {
      const u = this.udp;
      if (this.pendingUdp > 0) await new Promise<void>((r) => this.udpIdle.push(r));
      await new Promise<void>((r) => u.close(() => r()));
      return;
    }
    const s = this.tcp;
    this.dropped += this.queue.length;
    this.queue.length = 0;
    if (s === undefined) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        s.destroy();
        resolve();
      }, 2000);
      s.end(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}
