import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { defaultConfig, helpText, loadConfig, SETTINGS } from '../src/config.ts';

describe('Config', () => {
  it('has the defaults of PROTOCOL.md §6', () => {
    const config = defaultConfig();
    expect(config).toMatchObject({
      port: 8080, host: '127.0.0.1', pingIntervalMs: 25_000, idleTimeoutMs: 0, maxMessageBytes: 1_048_576,
      maxDocLength: 4_000_000, history: 1000, allowTmp: true, apiBaseUrl: '', jwtSecret: '', snapshotIntervalMs: 250,
    });
    expect(config.workers).toBeGreaterThan(0);
  });

  it('reads the environment, then flags, then overrides', () => {
    const config = loadConfig(
      { PORT: '9000', ALLOW_TMP: 'false', API_BASE_URL: 'http://127.0.0.1:1/api' },
      ['--port', '9001', '--history=5'],
      { workers: 0 },
    );
    expect(config).toMatchObject({ port: 9001, history: 5, allowTmp: false, workers: 0, apiBaseUrl: 'http://127.0.0.1:1/api/' });
  });

  it('names the bad setting', () => {
    expect(() => loadConfig({ PING_INTERVAL_MS: '-5' })).toThrow(/PING_INTERVAL_MS/);
    expect(() => loadConfig({ PORT: '70000' })).toThrow(/PORT/);
    expect(() => loadConfig({ ALLOW_TMP: 'maybe' })).toThrow(/ALLOW_TMP/);
    expect(() => loadConfig({ API_BASE_URL: 'ftp://x' })).toThrow(/API_BASE_URL/);
    expect(() => loadConfig({ HISTORY: '0' })).toThrow(/HISTORY/);
    expect(() => loadConfig({}, ['--no-such-thing', '1'])).toThrow(/--no-such-thing/);
    expect(() => loadConfig({}, ['--port'])).toThrow(/--port/);
    expect(() => loadConfig({ MAX_MESSAGE_BYTES: '1.5' })).toThrow(TypeError);
  });

  it('lists every setting in --help', () => {
    const help = helpText();
    for (const spec of SETTINGS) expect(help).toContain(spec.env);
  });

  it('lists every setting in the README table and in .env.example', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const sample = readFileSync(new URL('../.env.example', import.meta.url), 'utf8');
    for (const spec of SETTINGS) {
      expect(readme, spec.env).toContain(`| \`${spec.env}\` |`);
      expect(sample, spec.env).toMatch(new RegExp(`^#?${spec.env}=`, 'm'));
    }
  });
});
