import { afterEach, describe, expect, it, vi } from 'vitest';
import { describeProxy, proxyAgentFor } from './proxy.js';

afterEach(() => vi.unstubAllEnvs());

function env(vars: Record<string, string>) {
  for (const k of [
    'HTTPS_PROXY',
    'HTTP_PROXY',
    'ALL_PROXY',
    'NO_PROXY',
    'https_proxy',
    'http_proxy',
    'all_proxy',
    'no_proxy',
  ]) {
    vi.stubEnv(k, '');
  }
  for (const [k, v] of Object.entries(vars)) vi.stubEnv(k, v);
}

describe('proxyAgentFor', () => {
  it('uses HTTPS_PROXY for wss and HTTP_PROXY for ws', async () => {
    env({ HTTPS_PROXY: 'http://proxy:3128', HTTP_PROXY: 'http://plain:3128' });
    expect(describeProxy('wss://cp.example:443/v1/agent/connect')).toBe('http://proxy:3128/');
    expect(describeProxy('ws://cp.example/v1/agent/connect')).toBe('http://plain:3128/');
    expect(await proxyAgentFor('wss://cp.example/')).toBeDefined();
  });

  it('honours NO_PROXY', async () => {
    env({ HTTPS_PROXY: 'http://proxy:3128', NO_PROXY: '.internal,localhost' });
    expect(await proxyAgentFor('wss://cp.internal/')).toBeUndefined();
    expect(await proxyAgentFor('wss://cp.example/')).toBeDefined();
  });

  it('hides proxy credentials when describing', () => {
    env({ HTTPS_PROXY: 'http://u:secret@p:1' });
    expect(describeProxy('https://x/')).not.toContain('secret');
  });
});
