import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ControlPlane } from './control-plane.js';
import { REPO_ROOT } from './control-plane.js';
import { type Proc, startProcess, trackDir } from './processes.js';

const AGENT_BIN = path.join(REPO_ROOT, 'agent/bin/dbbackup-agent');

export interface AgentOptions {
  labels?: Record<string, string>;
  /** Extra environment for both enrol and run (proxy variables, crash points...). */
  env?: Record<string, string>;
}

export interface Agent {
  id: string;
  stateDir: string;
  proc: Proc;
  /** Start `dbbackup-agent run` again (after a kill), optionally with other environment. */
  restart(env?: Record<string, string>): Proc;
  run(args: string[], env?: Record<string, string>): Promise<{ code: number | null; lines: string[] }>;
}

export async function createEnrollmentToken(
  cp: ControlPlane,
  labels: Record<string, string> = {},
): Promise<string> {
  const r = await cp.api<{ token: string }>('POST', '/api/v1/enrollment-tokens', { labels });
  if (r.status !== 201) throw new Error(`enrollment token: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.token;
}

const runEnv = (stateDir: string, env: Record<string, string> = {}) => ({
  DBBACKUP_STATE_DIR: stateDir,
  DBBACKUP_LOG_LEVEL: 'debug',
  DBBACKUP_BACKOFF_BASE_MS: '200',
  DBBACKUP_BACKOFF_CAP_MS: '1000',
  DBBACKUP_STABLE_AFTER_MS: '2000',
  ...env,
});

/** Run one agent CLI command to completion. */
export async function agentCli(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; lines: string[] }> {
  const p = startProcess(AGENT_BIN, args, { env });
  const { code } = await p.exited;
  return { code, lines: p.lines };
}

/** Enrol a real agent process with the control plane and start `dbbackup-agent run`. */
export async function startAgent(cp: ControlPlane, o: AgentOptions = {}): Promise<Agent> {
  const stateDir = trackDir(mkdtempSync(path.join(tmpdir(), 'dbb-agent-')));
  const token = await createEnrollmentToken(cp, o.labels);
  const enrol = await agentCli(['enroll', '--server', cp.url, '--token', token], runEnv(stateDir, o.env));
  if (enrol.code !== 0) throw new Error(`enroll failed (${enrol.code}):\n${enrol.lines.join('\n')}`);
  const idLine = enrol.lines.find((l) => l.startsWith('{"agentId"'));
  if (!idLine) throw new Error(`enroll printed no agent id:\n${enrol.lines.join('\n')}`);
  const id = (JSON.parse(idLine) as { agentId: string }).agentId;
  const agent: Agent = {
    id,
    stateDir,
    proc: startProcess(AGENT_BIN, ['run'], { env: runEnv(stateDir, o.env) }),
    restart(env) {
      agent.proc = startProcess(AGENT_BIN, ['run'], { env: runEnv(stateDir, env ?? o.env) });
      return agent.proc;
    },
    run(args, env) {
      return agentCli(args, runEnv(stateDir, env ?? o.env));
    },
  };
  return agent;
}

/** Poll until `fn` returns a truthy value or the time runs out; returns the value and how long it took. */
export async function waitFor<T>(
  fn: () => Promise<T | undefined | false | null>,
  { timeoutMs = 10_000, intervalMs = 50, what = 'condition' } = {},
): Promise<{ value: T; ms: number }> {
  const start = Date.now();
  let last: unknown;
  while (Date.now() - start < timeoutMs) {
    try {
      const v = await fn();
      if (v) return { value: v, ms: Date.now() - start };
      last = v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${String(last)}`);
}
