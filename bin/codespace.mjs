#!/usr/bin/env node
// `npx codespace [--help]`: the server. On Node, TypeScript sources load through tsx.
if (!globalThis.Bun && !globalThis.Deno) {
  const { register } = await import('tsx/esm/api');
  register();
}
await import('../src/main.ts');
