import type { Agent } from 'node:http';
import { getProxyForUrl } from 'proxy-from-env';

/**
 * The HTTP agent to reach `url` through, honouring HTTPS_PROXY / HTTP_PROXY /
 * ALL_PROXY / NO_PROXY (either case) from the process environment. WebSocket
 * URLs are looked up as their HTTP equivalents (wss -> https), which Node's
 * `ws` does not do on its own. Requests through a proxy are tunnelled with CONNECT.
 */
export async function proxyAgentFor(url: string, ca?: Buffer): Promise<Agent | undefined> {
  const proxy = proxyUrlFor(url);
  if (!proxy) return undefined;
  // Loaded only when a proxy is configured: an agent without one does not carry it.
  // A CommonJS module: in the agent's bundle its exports are the chunk's default export.
  const mod: typeof import('https-proxy-agent') & { default?: typeof import('https-proxy-agent') } =
    await import('https-proxy-agent');
  const { HttpsProxyAgent } = mod.default ?? mod;
  return new HttpsProxyAgent(proxy, ca ? { ca } : {}) as unknown as Agent;
}

function proxyUrlFor(url: string): string {
  return getProxyForUrl(url.replace(/^ws(s?):/i, 'http$1:'));
}

/** The proxy URL that would be used, with any credentials hidden (for logs). */
export function describeProxy(url: string): string | undefined {
  const proxy = proxyUrlFor(url);
  if (!proxy) return undefined;
  try {
    const u = new URL(proxy);
    if (u.password) u.password = 'REDACTED';
    return u.toString();
  } catch {
    return '(invalid proxy URL)';
  }
}
