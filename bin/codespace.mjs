#!/usr/bin/env node
// `npx codespace [--help]`: the server. On Node, TypeScript sources load through tsx.
if (!globalThis.Bun && !globalThis.Deno) {
  const { register } = await import('tsx/esm/api');
  register();
}
// Like `make run`: documents kept in ./data unless DATA_DIR says otherwise (DATA_DIR= keeps them
// in memory) or Redis is the store. startServer() and createHub() have no such default.
if (process.env.DATA_DIR === undefined && !process.env.REDIS_URL) process.env.DATA_DIR = './data';
await import('../src/main.ts');
