import { CliError, EXIT, usage } from '../api.js';
import type { Ctx } from '../context.js';
import { type Job, resolveTarget, started } from '../lookups.js';
import { bytes, show, table } from '../output.js';

/** Backups, restores and verifies: starting them, following them, and the catalogue. */

export async function backup(c: Ctx): Promise<number> {
  const { api, out, flags, sub } = c;
  const t = await resolveTarget(api, sub);
  const job = await api.post<{ id: string }>(`/api/v1/targets/${t.id}/backups`);
  return started(api, out, flags, job, (j) => {
    const r = j.result as { backupId?: string; sizeBytes?: number } | null;
    return `backup ${r?.backupId} of ${t.name}: ${bytes(r?.sizeBytes)} stored`;
  });
}

export async function restore(c: Ctx): Promise<number> {
  const { api, out, flags, sub, need } = c;
  const backupId = need(sub, 'a backup id');
  const conflict = (flags['on-conflict'] as string | undefined) ?? 'fail';
  if (!['fail', 'clean', 'create'].includes(conflict)) throw usage('--on-conflict: fail, clean or create');
  // --target: restore through another target of the same engine (its server, its credentials).
  const through = flags.target ? await resolveTarget(api, flags.target as string) : undefined;
  const job = await api.post<{ id: string }>(`/api/v1/backups/${backupId}/restore`, {
    conflict,
    ...(through ? { targetId: through.id } : {}),
    ...(flags.to ? { database: flags.to } : {}),
    ...(flags.tables ? { tables: (flags.tables as string).split(',').map((s) => s.trim()) } : {}),
  });
  return started(api, out, flags, job, () => `restored backup ${backupId}`);
}

export async function verify(c: Ctx): Promise<number> {
  const { api, out, flags, sub } = c;
  let backupId = sub;
  if (!backupId) {
    if (!flags.target || !flags.latest) throw usage('verify needs a backup id, or --target T --latest');
    const t = await resolveTarget(api, flags.target as string);
    const list = await api.get<{ items: { id: string; finishedAt: string }[] }>(
      `/api/v1/backups?target=${t.id}`,
    );
    const newest = [...list.items].sort((a, b) => (a.finishedAt < b.finishedAt ? 1 : -1))[0];
    if (!newest) throw new CliError(`target ${t.name} has no backup`, EXIT.notFound);
    backupId = newest.id;
  }
  const job = await api.post<{ id: string }>(`/api/v1/backups/${backupId}/verify`);
  return started(api, out, flags, job, () => `backup ${backupId} verified`);
}

export async function backups(c: Ctx): Promise<number> {
  const { api, out, flags, sub } = c;
  if (sub && sub !== 'ls') throw usage('backups: expected ls');
  const q = flags.target ? `?target=${(await resolveTarget(api, flags.target as string)).id}` : '';
  const r = await api.get<{ items: Record<string, unknown>[] }>(`/api/v1/backups${q}`);
  show(out, r.items, () =>
    table(
      out,
      r.items.map((b) => ({ ...b, size: bytes(b.sizeBytes as number) })),
      ['id', 'targetId', 'finishedAt', 'size', 'status'],
    ),
  );
  return EXIT.ok;
}

export async function logs(c: Ctx): Promise<number> {
  const { api, out, flags, sub, need } = c;
  const jobId = need(sub, 'a job id');
  let after = 0;
  for (;;) {
    const r = await api.get<{ items: { id: number; at: string; level: string; message: string }[] }>(
      `/api/v1/jobs/${jobId}/logs?after=${after}`,
    );
    for (const l of r.items) {
      out.write(out.json ? `${JSON.stringify(l)}\n` : `${l.at} ${l.level.padEnd(5)} ${l.message}\n`);
      after = l.id;
    }
    if (!flags.follow) return EXIT.ok;
    const j = await api.get<Job>(`/api/v1/jobs/${jobId}`);
    if (['succeeded', 'failed', 'cancelled'].includes(j.state) && r.items.length === 0) {
      return j.state === 'succeeded' ? EXIT.ok : EXIT.failure;
    }
    await new Promise((res) => setTimeout(res, 500));
  }
}
