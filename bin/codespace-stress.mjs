#!/usr/bin/env node
// `npx codespace-stress [--help]`: the stress tool. On Node, TypeScript sources load through tsx.
if (!globalThis.Bun && !globalThis.Deno) {
  const { register } = await import('tsx/esm/api');
  register();
}
await import('../src/stress/stress.ts');
