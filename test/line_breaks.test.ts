/** PROTOCOL.md §2 line breaks: "\r" refused in inserts, "\r\n" and "\r" normalised where texts are loaded. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBackplane } from '../src/backplane/memory_backplane.ts';
import { RedisBackplane } from '../src/backplane/redis_backplane.ts';
import { normalizeLineBreaks } from '../src/doc/line_breaks.ts';
import { TextDoc } from '../src/doc/text_doc.ts';
import { startRedis, type TestRedis } from './support/redis.ts';

describe('normalizeLineBreaks', () => {
  it('turns "\\r\\n" and a lone "\\r" into "\\n", and leaves the rest alone', () => {
    expect(normalizeLineBreaks('a\r\nb\rc\nd\r\r\n')).toBe('a\nb\nc\nd\n\n');
    expect(normalizeLineBreaks('no breaks')).toBe('no breaks');
  });
});

describe('TextDoc', () => {
  it('refuses an insert holding "\\r" with invalid_change, and takes "\\n"', () => {
    const doc = new TextDoc({ text: 'ab', version: 0, log: [], epoch: 'e' }, { history: 10, maxDocLength: 100 });
    for (const insert of ['\r\n', '\r', 'x\ry']) {
      expect(doc.prepare({ changes: [{ from: 1, to: 1, insert }] }, 's')).toMatchObject({ kind: 'rejected', code: 'invalid_change' });
    }
    expect(doc.prepare({ changes: [{ from: 1, to: 1, insert: '\n' }] }, 's').kind).toBe('ready');
  });
});

describe('loading', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis.stop();
  });

  it('memory: a text restored with "\\r\\n" loads with "\\n", so lengths are CodeMirror\'s', async () => {
    const backplane = new MemoryBackplane({ history: 10 });
    await backplane.restore('cs', { text: 'def f():\r\n    return 1\r', version: 1, log: [], epoch: 'e' });
    expect((await backplane.load('cs')).text).toBe('def f():\n    return 1\n');
  });

  it('redis: a `code` the SharePython API wrote with "\\r\\n" loads with "\\n"', async () => {
    await redis.client.hset('sp-crlf', 'code', 'x = 1\r\ny = 2\rz');
    const backplane = new RedisBackplane({ url: redis.url, keyPrefix: '', ttlS: 60, tmpTtlS: 60, history: 10, timeoutMs: 2000 });
    try {
      expect(await backplane.load('sp-crlf')).toMatchObject({ text: 'x = 1\ny = 2\nz', version: 0 });
    } finally {
      await backplane.close();
    }
  });
});
