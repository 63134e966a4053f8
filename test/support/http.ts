/** Plain HTTP requests with full control of method, headers and body (node:http, no fetch niceties). */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';

export interface HttpAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export function httpGet(port: number, path: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const request = httpRequest({ host: '127.0.0.1', port, path, method: options.method ?? 'GET', headers: options.headers, timeout: 10_000 }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) }));
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error(`${path}: no answer in 10 s`)));
    request.on('error', reject);
    request.end(options.body);
  });
}

/** Opens an event stream and collects its events until `until` says enough (or 15 s pass). */
export function readEvents(port: number, path: string, headers: Record<string, string>, until: (events: { event: string; data: string }[]) => boolean): Promise<{ status: number; headers: IncomingHttpHeaders; events: { event: string; data: string }[] }> {
  return new Promise((resolve, reject) => {
    const events: { event: string; data: string }[] = [];
    const request = httpRequest({ host: '127.0.0.1', port, path, headers }, (response) => {
      if (response.statusCode !== 200) {
        response.resume();
        return resolve({ status: response.statusCode ?? 0, headers: response.headers, events });
      }
      let buffer = '';
      const timer = setTimeout(() => {
        request.destroy();
        reject(new Error(`event stream ${path}: condition not met in 15 s; got ${JSON.stringify(events).slice(0, 500)}`));
      }, 15_000);
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let event = 'message';
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith('event: ')) event = line.slice(7);
            else if (line.startsWith('data: ')) data.push(line.slice(6));
          }
          if (data.length > 0) events.push({ event, data: data.join('\n') });
        }
        if (until(events)) {
          clearTimeout(timer);
          request.destroy();
          resolve({ status: 200, headers: response.headers, events });
        }
      });
    });
    request.on('error', (error) => {
      if (!request.destroyed) reject(error);
    });
    request.end();
  });
}
