import { EXIT, usage } from '../api.js';
import type { Ctx } from '../context.js';
import { resolveTarget, started } from '../lookups.js';
import { show, table } from '../output.js';

/** `drill TARGET [--wait]`: restore the target's newest good backup into a scratch destination now. */
export async function drill(c: Ctx): Promise<number> {
  const { api, out, flags, sub } = c;
  const t = await resolveTarget(api, sub);
  const job = await api.post<{ id: string }>(`/api/v1/targets/${t.id}/drills`);
  return started(api, out, flags, job, (j) => {
    const r = j.result as { rtoSeconds?: number; dataAgeSeconds?: number; tablesChecked?: number } | null;
    return `drill of ${t.name} passed: restored and checked in ${r?.rtoSeconds?.toFixed(1)} s, ${r?.tablesChecked} tables; the backup was ${Math.round(r?.dataAgeSeconds ?? 0)} s old`;
  });
}

type ReportItem = {
  target: string;
  engine: string;
  lastGoodBackupAt: string | null;
  lastSuccessfulDrillAt: string | null;
  lastDrill: { state: string } | null;
  measuredRtoSeconds: number | null;
  rtoObjectiveSeconds: number | null;
  measuredRpoSeconds: number | null;
  rpoObjectiveSeconds: number | null;
  proven: boolean;
};

/** `report recoverability [--json]`: every target's last good backup, last drill and measured RTO/RPO. */
export async function report(c: Ctx): Promise<number> {
  const { api, out, sub } = c;
  if (sub !== 'recoverability') throw usage('report: expected recoverability');
  const r = await api.get<{ items: ReportItem[] }>('/api/v1/reports/recoverability');
  const secs = (v: number | null) => (v === null ? '-' : `${v.toFixed(1)} s`);
  show(out, r.items, () =>
    table(
      out,
      r.items.map((i) => ({
        target: i.target,
        engine: i.engine,
        lastGoodBackup: i.lastGoodBackupAt,
        lastDrill: i.lastDrill?.state ?? 'never',
        lastProven: i.lastSuccessfulDrillAt,
        rto: `${secs(i.measuredRtoSeconds)} / ${secs(i.rtoObjectiveSeconds)}`,
        rpo: `${secs(i.measuredRpoSeconds)} / ${secs(i.rpoObjectiveSeconds)}`,
      })),
      ['target', 'engine', 'lastGoodBackup', 'lastDrill', 'lastProven', 'rto', 'rpo'],
    ),
  );
  return r.items.every((i) => i.proven) ? EXIT.ok : EXIT.failure;
}
