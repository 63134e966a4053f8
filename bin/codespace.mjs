#!/usr/bin/env node
// `npx codespace [--help]`: the server, as built into dist/ (`npm run build` in a checkout).
await import('../dist/main.js');
