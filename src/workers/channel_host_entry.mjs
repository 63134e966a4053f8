// Worker entry for piscina. Node 20 cannot load .ts files by itself, so it registers tsx first;
// Bun and Deno load TypeScript natively (ARCHITECTURE.md, facts measured).
if (!globalThis.Bun && !globalThis.Deno) {
  const { register } = await import('tsx/esm/api');
  register();
}
const { hostChannel } = await import('./channel_host.ts');
export default hostChannel;
