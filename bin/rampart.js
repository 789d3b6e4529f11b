#!/usr/bin/env node
// The `rampart` command: runs the compiled CLI (built by `npm run build`, or by `npm ci` through `prepare`).
import '../dist/src/cli/main.js';
