import http from 'node:http';
import https from 'node:https';
import { proxyAgentFor } from './link/proxy.js';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly problem: { title?: string; detail?: string; type?: string } | undefined,
    message: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** POST JSON to the control plane, through the configured proxy and CA, and parse the JSON answer. */
export async function postJson<T>(
  url: string,
  body: unknown,
  { ca, timeoutMs = 30_000 }: { ca?: Buffer; timeoutMs?: number } = {},
): Promise<T> {
  const u = new URL(url);
  const lib = u.protocol === 'https:' ? https : http;
  const payload = Buffer.from(JSON.stringify(body));
  const agent = await proxyAgentFor(url, ca);
  return new Promise<T>((resolve, reject) => {
    const req = lib.request(
      u,
      {
        method: 'POST',
        agent,
        ...(ca ? { ca } : {}),
        headers: {
          'content-type': 'application/json',
          'content-length': payload.length,
          accept: 'application/json',
        },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            parsed = undefined;
          }
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) return resolve(parsed as T);
          const problem = parsed as { title?: string; detail?: string; type?: string } | undefined;
          reject(
            new HttpError(
              status,
              problem,
              `${status} ${problem?.title ?? res.statusMessage ?? ''}: ${problem?.detail ?? text.slice(0, 200)}`,
            ),
          );
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`request to ${u.origin} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}
