/** Starts a real server on a free loopback port for a test, with quiet logs kept for asserts. */
import { startServer, type RunningServer } from '../../src/mod.ts';
import type { Config } from '../../src/config.ts';

export interface TestServer extends RunningServer {
  logs: { event: string; fields: Record<string, unknown> }[];
  /** `ws://127.0.0.1:<port>/codespace/<token>/` */
  urlFor(token: string, query?: string): string;
}

export async function startTestServer(overrides: Partial<Config> = {}): Promise<TestServer> {
  const logs: TestServer['logs'] = [];
  const server = await startServer(
    { port: 0, host: '127.0.0.1', workers: 2, channelGraceMs: 200, ...overrides },
    (event, fields) => logs.push({ event, fields }),
  );
  return Object.assign(server, {
    logs,
    urlFor: (token: string, query = '') => `${server.url}/codespace/${token}/${query ? `?${query}` : ''}`,
  });
}
