/**
 * The one security event type. Every rejection emits exactly one, carrying the same reason
 * code as the problem-details `type`; controls also emit events for detections they let
 * through (monitor mode, alerts, redactions).
 */

/** Event severity, lowest first. */
export type Severity = 'info' | 'low' | 'medium' | 'high' | 'critical';

/** What the gateway did about the event. */
export type EventAction = 'deny' | 'challenge' | 'alert' | 'monitor' | 'redact' | 'abort' | 'revoke' | 'allow' | 'error';

/** A security event as the sinks receive it (after central secret redaction). */
export interface SecurityEvent {
  /** ISO 8601 time of the event. */
  time: string;
  /** Request id (`X-Request-Id`), when the event belongs to a request. */
  request_id?: string;
  /** Name of the matched API. */
  api?: string;
  /** Operation id of the matched OpenAPI operation. */
  operation?: string;
  /** Client IP derived by the trusted-proxy rule. */
  client_ip?: string;
  /** Identity subject (or key id) when known. */
  identity?: string;
  method?: string;
  /** Request path; query values named like secrets are redacted. */
  path?: string;
  /** Control that raised the event: `gateway`, `limits`, `identity`, ... */
  control: string;
  /** Stable reason code, e.g. `token-expired`; equals the problem `type`'s last segment on rejections. */
  reason: string;
  action: EventAction;
  severity: Severity;
  /** HTTP status sent to the client, on rejections. */
  status?: number;
  /** Free-form details; redacted centrally before any sink sees them. */
  details?: Record<string, unknown>;
}

/** What a control supplies; the gateway fills in the request fields and the time. */
export type EventInput = Pick<SecurityEvent, 'control' | 'reason' | 'action' | 'severity'> &
  Partial<Omit<SecurityEvent, 'control' | 'reason' | 'action' | 'severity'>>;
