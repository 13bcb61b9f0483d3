import { usage } from '../api.js';
import type { Ctx } from '../context.js';
import { resolveTarget, started } from '../lookups.js';
import { show, table } from '../output.js';

type Window = {
  earliest: string | null;
  latest: string | null;
  ranges: { timeline: number; from: string; to: string }[];
  gaps: { missingFrom: string; missingTo: string; restorableUntil: string | null }[];
  walFiles: number;
  archiver: { receiving: boolean; lastArchived: string | null; error: string | null } | null;
};

/**
 * `restore TARGET (--to-time T | --to-lsn L | --latest) --data-dir DIR [--port P] [--wait]`:
 * a physical target restored to a point in time into a new data directory on its host.
 */
export async function pitrRestore(c: Ctx): Promise<number> {
  const { api, out, flags, sub, need } = c;
  const t = await resolveTarget(api, need(sub, 'a target'));
  const chosen = [flags['to-time'], flags['to-lsn'], flags.latest].filter(Boolean).length;
  if (chosen !== 1) throw usage('restore TARGET --data-dir DIR needs one of --to-time, --to-lsn or --latest');
  const port = flags.port === undefined ? undefined : Number(flags.port);
  const job = await api.post<{ id: string }>(`/api/v1/targets/${t.id}/restore`, {
    dataDirectory: flags['data-dir'],
    ...(flags['to-time'] ? { pointInTime: flags['to-time'] } : {}),
    ...(flags['to-lsn'] ? { lsn: flags['to-lsn'] } : {}),
    ...(flags.latest ? { latest: true } : {}),
    ...(port !== undefined ? { port } : {}),
  });
  return started(api, out, flags, job, (j) => {
    const r = j.result as {
      port?: number;
      dataDirectory?: string;
      stoppedAt?: string | null;
      lastTransactionAt?: string | null;
    } | null;
    return `${t.name} restored into ${r?.dataDirectory}: PostgreSQL runs on port ${r?.port}${r?.stoppedAt ? `, recovery stopped ${r.stoppedAt}` : ''}${r?.lastTransactionAt ? `, last transaction at ${r.lastTransactionAt}` : ''}`;
  });
}

/** `recovery-window TARGET`: what a physical target can be restored to, and any hole in its WAL. */
export async function recoveryWindow(c: Ctx): Promise<number> {
  const { api, out, sub, need } = c;
  const t = await resolveTarget(api, need(sub, 'a target'));
  const w = await api.get<Window>(`/api/v1/targets/${t.id}/recovery-window`);
  show(out, w, () => {
    out.write(
      `${t.name}: restorable from ${w.earliest ?? '-'} to ${w.latest ?? '-'} (${w.walFiles} WAL files archived)\n`,
    );
    table(out, w.ranges, ['timeline', 'from', 'to']);
    for (const g of w.gaps)
      out.write(
        `gap: ${g.missingFrom} to ${g.missingTo} missing; restorable until ${g.restorableUntil ?? '-'}\n`,
      );
    if (w.archiver?.error) out.write(`archiver: ${w.archiver.error}\n`);
  });
  return w.gaps.length || w.archiver?.error ? 1 : 0;
}

/** `verify-chain TARGET [--wait]`: every archived WAL file is in storage and authenticates. */
export async function verifyChain(c: Ctx): Promise<number> {
  const { api, out, flags, sub, need } = c;
  const t = await resolveTarget(api, need(sub, 'a target'));
  const job = await api.post<{ id: string }>(`/api/v1/targets/${t.id}/verify-chain`);
  return started(api, out, flags, job, (j) => {
    const r = j.result as { checked?: number; missing?: string[]; corrupt?: unknown[] } | null;
    return `${t.name}: ${r?.checked} WAL files checked, ${r?.missing?.length ?? 0} missing, ${r?.corrupt?.length ?? 0} corrupt`;
  });
}
