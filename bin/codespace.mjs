#!/usr/bin/env node
// `npx codespace [--help]`: the server, as built into dist/ (`npm run build` in a checkout).
// Like `make run`: documents kept in ./data unless DATA_DIR says otherwise (DATA_DIR= keeps them
// in memory) or Redis is the store. startServer() and createHub() have no such default.
if (process.env.DATA_DIR === undefined && !process.env.REDIS_URL) process.env.DATA_DIR = './data';
await import('../dist/main.js');
