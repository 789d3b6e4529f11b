/**
 * The control registry: every control Rampart ships, keyed by its name under an API's
 * `controls:`. Order here does not matter; stages are ordered by their phase.
 */
import type { ControlDefinition } from '../pipeline/control.ts';
import { abuseControl } from './abuse/index.ts';
import { dlpControl } from './dlp/index.ts';
import { headersControl } from './headers/index.ts';
import { identityControl } from './identity/index.ts';
import { inspectionControl } from './inspection/index.ts';
import { limitsControl } from './limits/index.ts';
import { networkControl } from './network/index.ts';

export const CONTROLS: readonly ControlDefinition[] = [limitsControl, headersControl, identityControl, abuseControl, inspectionControl, dlpControl, networkControl];
