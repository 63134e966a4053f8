#!/usr/bin/env node
// `npx codespace-stress [--help]`: the stress tool, as built into dist/ (`npm run build` in a checkout).
await import('../dist/stress/stress.js');
