import { generateKeyPairSync } from 'node:crypto';
import { exportJWK } from 'jose';
import { FleetRecorder, SimAgent, type SimIdentity } from './fleet-agent.js';

export { FleetRecorder, SimAgent, type SimIdentity } from './fleet-agent.js';

/** Run `fn` over `items` with at most `concurrency` at once. */
export async function pool<T, R>(items: T[], concurrency: number, fn: (t: T, i: number) => Promise<R>) {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return out;
}

async function call<T>(base: string, token: string | null, method: string, p: string, body?: unknown) {
  const res = await fetch(`${base}${p}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}

/**
 * Enrol `n` agents the real way: an enrolment token each (POST /enrollment-tokens with
 * the admin token), then POST /agents/enroll with a fresh Ed25519 public key.
 */
export async function enrolFleet(
  base: string,
  adminToken: string,
  n: number,
  concurrency = 16,
): Promise<SimIdentity[]> {
  return pool(Array.from({ length: n }), concurrency, async (_x, i) => {
    const { token } = await call<{ token: string }>(
      base,
      adminToken,
      'POST',
      '/api/v1/enrollment-tokens',
      {},
    );
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const r = await call<{ agentId: string; audience: string }>(base, null, 'POST', '/api/v1/agents/enroll', {
      token,
      hostname: `sim-${i}`,
      agentVersion: 'fleet-sim',
      signingKey: await exportJWK(publicKey),
    });
    return { agentId: r.agentId, audience: r.audience, key: privateKey };
  });
}

/** A fleet of simulated agents sharing one recorder. */
export class Fleet {
  readonly rec = new FleetRecorder();
  readonly agents: SimAgent[];

  constructor(ids: SimIdentity[], urls: () => string[]) {
    this.agents = ids.map((id, i) => {
      const pick = () => {
        const u = urls();
        return u[Math.floor(Math.random() * u.length)] as string;
      };
      return new SimAgent(id, i, this.rec, pick);
    });
  }

  get ready() {
    let n = 0;
    for (const a of this.agents) if (a.ready) n++;
    return n;
  }

  /** Start every agent, their first attempts spread over `spreadMs` (as hosts booting would). */
  start(spreadMs = 0) {
    for (const a of this.agents) a.start(Math.floor(Math.random() * spreadMs));
  }

  stop() {
    for (const a of this.agents) a.stop();
  }

  untilReady(n: number, timeoutMs: number) {
    return this.rec.until(() => this.ready >= n, timeoutMs, `${n} agents welcomed (have ${this.ready})`);
  }
}

/** The p-th percentile (0–100) of `xs`, nearest rank; NaN when empty. */
export function percentile(xs: number[], p: number): number {
  if (!xs.length) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] as number;
}

/** Connection attempts per 100 ms bucket in [from, to): the peak and the mean. */
export function attemptRate(attempts: number[], from: number, to: number) {
  const buckets = new Map<number, number>();
  let n = 0;
  for (const t of attempts) {
    if (t < from || t >= to) continue;
    n++;
    const b = Math.floor((t - from) / 100);
    buckets.set(b, (buckets.get(b) ?? 0) + 1);
  }
  const span = Math.max(1, Math.ceil((to - from) / 100));
  return { peak: Math.max(0, ...buckets.values()), mean: n / span, total: n };
}

export { call as fleetApi };
