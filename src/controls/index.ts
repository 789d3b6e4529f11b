/**
 * The control registry: every control Rampart ships, keyed by its name under an API's
 * `controls:`. Stages are ordered by their phase; within one phase they run in this order
 * (`sender` reads the identity that `identity` sets, so it comes right after it).
 */
import type { ControlDefinition } from '../pipeline/control.ts';
import { abuseControl } from './abuse/index.ts';
import { authzControl } from './authz/index.ts';
import { contractControl } from './contract/index.ts';
import { dlpControl } from './dlp/index.ts';
import { headersControl } from './headers/index.ts';
import { identityControl } from './identity/index.ts';
import { inspectionControl } from './inspection/index.ts';
import { limitsControl } from './limits/index.ts';
import { transportControl } from './transport/index.ts';
import { networkControl } from './network/index.ts';
import { passportControl } from './passport/index.ts';
import { senderControl } from './sender/index.ts';

export const CONTROLS: readonly ControlDefinition[] = [
  limitsControl,
  headersControl,
  identityControl,
  senderControl,
  abuseControl,
  inspectionControl,
  dlpControl,
  networkControl,
  transportControl,
  passportControl,
  contractControl,
  authzControl,
];
