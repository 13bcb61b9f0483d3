import { readFileSync } from 'node:fs';
import { type ControlPlane, cleanupAll, startAgent, waitFor } from '@dbbackup/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AgentView, controlPlane, getAgent } from './support.js';

let cp: ControlPlane;
beforeAll(async () => {
  cp = await controlPlane();
});
afterAll(cleanupAll);

describe('enrolment', () => {
  it('lists a newly enrolled agent online within 2 s, with its host facts', async () => {
    const agent = await startAgent(cp, { labels: { env: 'test', team: 'dba' } });
    const t0 = Date.now();
    const { value } = await waitFor(
      async () => {
        const a = await getAgent(cp, agent.id);
        return a.status === 'online' && a.facts ? a : undefined;
      },
      { timeoutMs: 10_000, what: 'agent online with facts' },
    );
    // From the moment the run process started (after enrol) to online with facts.
    expect(Date.now() - t0).toBeLessThan(2000 + 1500 /* process start of tsx */);
    const facts = value.facts as Record<string, unknown>;
    expect(facts.hostname).toEqual(expect.any(String));
    expect(facts.agentVersion).toBe(
      JSON.parse(readFileSync(new URL('../agent/package.json', import.meta.url), 'utf8')).version,
    );
    expect(facts.arch).toBe(process.arch);
    expect(Array.isArray(facts.tools)).toBe(true);
    expect(facts.stateDirFreeBytes).toBeGreaterThan(0);
    expect(facts).toHaveProperty('outboxDepth');
    expect(facts).toHaveProperty('queueDepth');

    const list = await cp.api<{ items: AgentView[] }>('GET', '/api/v1/agents');
    const listed = list.body.items.find((a) => a.id === agent.id) as AgentView & {
      labels: Record<string, string>;
    };
    expect(listed.status).toBe('online');
    expect(listed.labels).toEqual({ env: 'test', team: 'dba' });
  });

  it('stores API and enrolment tokens only as hashes', async () => {
    const { query } = await import('@dbbackup/testkit');
    const rows = await query<{ token_hash: string }>(cp.databaseUrl, 'SELECT token_hash FROM api_tokens');
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) {
      expect(r.token_hash).toMatch(/^[0-9a-f]{64}$/);
      expect(r.token_hash).not.toContain(cp.adminToken);
    }
  });

  it('reports its status from the state directory', async () => {
    const agent = await startAgent(cp);
    await waitFor(async () => (await getAgent(cp, agent.id)).status === 'online', { what: 'online' });
    const r = await agent.run(['status']);
    expect(r.code).toBe(0);
    const status = JSON.parse(r.lines.join('\n'));
    expect(status.agentId).toBe(agent.id);
    expect(status.lastConnectedAt).not.toBeNull();
  });

  it('keeps secrets in owner-only files: admin token 0600, agent state dir 0700, keys 0600', async () => {
    const { statSync } = await import('node:fs');
    const path = await import('node:path');
    const agent = await startAgent(cp);
    const mode = (p: string) => statSync(p).mode & 0o777;
    expect(mode(path.join(cp.dataDir, 'admin-token'))).toBe(0o600);
    expect(mode(agent.stateDir)).toBe(0o700);
    expect(mode(path.join(agent.stateDir, 'keys/signing.jwk.json'))).toBe(0o600);
    expect(mode(path.join(agent.stateDir, 'keys/encryption.jwk.json'))).toBe(0o600);
    expect(mode(path.join(agent.stateDir, 'agent.json'))).toBe(0o600);
  });

  it('prints the admin token once, on first start only', async () => {
    const banner = (lines: string[]) => lines.filter((l) => l.includes(cp.adminToken)).length;
    expect(banner(cp.proc.lines)).toBe(1);
    await cp.stop();
    await cp.restart();
    expect(banner(cp.proc.lines)).toBe(0);
  });

  it('opens no listening socket on the database host (outbound only)', async () => {
    const { readdirSync, readFileSync, readlinkSync } = await import('node:fs');
    const agent = await startAgent(cp);
    await waitFor(async () => (await getAgent(cp, agent.id)).status === 'online', { what: 'online' });
    const pid = agent.proc.child.pid!;
    const inodes = new Set<string>();
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m?.[1]) inodes.add(m[1]);
      } catch {}
    }
    expect(inodes.size).toBeGreaterThan(0); // it does hold its outbound WebSocket
    const listening: string[] = [];
    for (const table of ['/proc/net/tcp', '/proc/net/tcp6', '/proc/net/udp', '/proc/net/udp6']) {
      for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
        const cols = line.trim().split(/\s+/);
        // TCP state 0A is LISTEN; any bound UDP socket would receive unsolicited traffic.
        if (cols[9] && inodes.has(cols[9]) && (table.includes('udp') || cols[3] === '0A'))
          listening.push(`${table} ${line.trim()}`);
      }
    }
    expect(listening).toEqual([]);
  });
});
