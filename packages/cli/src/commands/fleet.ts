import { EXIT, usage } from '../api.js';
import type { Ctx } from '../context.js';
import { type Agent, type Job, resolveAgent, type Target } from '../lookups.js';
import { show, table } from '../output.js';

/** The fleet: its summary, agents, enrolment tokens and targets. */

export async function status(c: Ctx): Promise<number> {
  const { api, out, flags, server } = c;
  const [agents, targets, alerts, jobs] = await Promise.all([
    api.all<Agent>('/api/v1/agents'),
    api.all<Target>('/api/v1/targets'),
    api.get<{ items: { kind: string; message: string }[] }>('/api/v1/alerts?state=firing'),
    api.get<{ items: Job[] }>('/api/v1/jobs?state=running'),
  ]);
  const byStatus: Record<string, number> = {};
  for (const a of agents.items) byStatus[a.status] = (byStatus[a.status] ?? 0) + 1;
  const health = flags.verbose
    ? await Promise.all(
        targets.items.map(async (t) => ({
          target: t.name,
          engine: t.engine,
          ...(await api.get<Record<string, unknown>>(`/api/v1/targets/${t.id}/health`)),
        })),
      )
    : undefined;
  const summary = {
    server,
    agents: byStatus,
    targets: targets.items.length,
    runningJobs: jobs.items.length,
    firingAlerts: alerts.items.length,
    ...(health ? { health } : {}),
  };
  show(out, summary, () => {
    out.write(`server   ${server}\n`);
    out.write(
      `agents   ${
        Object.entries(byStatus)
          .map(([k, v]) => `${v} ${k}`)
          .join(', ') || 'none'
      }\n`,
    );
    out.write(`targets  ${targets.items.length}\njobs     ${jobs.items.length} running\n`);
    out.write(`alerts   ${alerts.items.length} firing\n`);
    for (const a of alerts.items) out.write(`  ! ${a.kind}: ${a.message}\n`);
    if (health)
      table(out, health, ['target', 'engine', 'lastGoodBackupAt', 'rpoSeconds', 'nextExpectedRunAt']);
  });
  return alerts.items.length > 0 ? EXIT.failure : EXIT.ok;
}

export async function agents(c: Ctx): Promise<number> {
  const { api, out, sub, rest } = c;
  if (sub === 'ls' || !sub) {
    const r = await api.all<Agent>('/api/v1/agents');
    show(out, r.items, () =>
      table(out, r.items as never, ['id', 'hostname', 'status', 'agentVersion', 'lastSeenAt']),
    );
    return EXIT.ok;
  }
  const a = await resolveAgent(api, rest[0]);
  if (sub === 'show') {
    const full = await api.get<Record<string, unknown>>(`/api/v1/agents/${a.id}`);
    show(out, full, () => out.write(`${JSON.stringify(full, null, 2)}\n`));
    return EXIT.ok;
  }
  if (sub === 'revoke') {
    await api.call('DELETE', `/api/v1/agents/${a.id}`);
    show(out, { id: a.id, revoked: true }, () => out.write(`revoked ${a.hostname} (${a.id})\n`));
    return EXIT.ok;
  }
  throw usage(`agents ${sub}: expected ls, show or revoke`);
}

export async function enrollToken(c: Ctx): Promise<number> {
  const { api, out, flags, sub } = c;
  if (sub !== 'create') throw usage('enroll-token: expected create');
  const labels: Record<string, string> = {};
  for (const l of (flags.label as string[] | undefined) ?? []) {
    const i = l.indexOf('=');
    if (i <= 0) throw usage(`--label: expected k=v, got ${JSON.stringify(l)}`);
    labels[l.slice(0, i)] = l.slice(i + 1);
  }
  const r = await api.post<{ token: string; expiresAt: string; installCommand: string | null }>(
    '/api/v1/enrollment-tokens',
    { labels, ...(flags.ttl ? { ttlSeconds: Number(flags.ttl) } : {}) },
  );
  show(out, r, () => out.write(`${r.installCommand ?? r.token}\n(one use, valid until ${r.expiresAt})\n`));
  return EXIT.ok;
}

export async function targets(c: Ctx): Promise<number> {
  const { api, out, flags, sub, rest, need } = c;
  if (sub === 'ls' || !sub) {
    const q = flags.agent
      ? `/api/v1/agents/${(await resolveAgent(api, flags.agent as string)).id}/targets`
      : '/api/v1/targets';
    const r = await api.all<Target>(q);
    show(out, r.items, () => table(out, r.items as never, ['id', 'name', 'engine', 'agentId']));
    return EXIT.ok;
  }
  if (sub === 'discover') {
    const a = await resolveAgent(api, rest[0]);
    const r = await api.get<{ items: Record<string, unknown>[] }>(`/api/v1/agents/${a.id}/discovered`);
    show(out, r.items, () => table(out, r.items, ['key', 'engine', 'name', 'host', 'port', 'path']));
    return EXIT.ok;
  }
  if (sub === 'add') {
    const a = await resolveAgent(api, need(flags.agent, '--agent'));
    const connection: Record<string, unknown> = {};
    for (const k of ['host', 'database', 'user', 'path'] as const) if (flags[k]) connection[k] = flags[k];
    if (flags.port) connection.port = Number(flags.port);
    // A secret declared on the agent's host (dbbackup-agent secret add NAME --allow ...).
    const secretRef = flags.secret ? { kind: 'secret', name: flags.secret } : undefined;
    const t = await api.post<Target>(`/api/v1/agents/${a.id}/targets`, {
      engine: need(flags.engine, '--engine'),
      name: need(flags.name, '--name'),
      storageId: need(flags.storage, '--storage'),
      connection,
      ...(secretRef ? { secretRef } : {}),
    });
    show(out, t, () => out.write(`${t.id}\n`));
    return EXIT.ok;
  }
  throw usage(`targets ${sub}: expected ls, add or discover`);
}
