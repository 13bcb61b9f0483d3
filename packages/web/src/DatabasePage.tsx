import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { api, type User } from './api.js';
import { BackupsTable } from './BackupsTable.js';
import { Cli, shellWord } from './Cli.js';
import { DayStrip } from './DayStrip.js';
import { ErrorNote } from './ErrorNote.js';
import { bytes, relative } from './format.js';
import { PointInTime } from './PointInTime.js';
import { Retention } from './Retention.js';
import { Schedules } from './Schedules.js';
import type { Job, TargetDetail } from './types.js';

function rpo(seconds: number | null): string {
  if (seconds === null) return 'no good backup yet';
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172_800) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86_400)} days`;
}

/** One database: its health, schedules, retention, backups (with their actions) and restores. */
export function DatabasePage({ id, user, go }: { id: string; user: User; go: (p: string) => void }) {
  const q = useQuery({
    queryKey: ['dashboard/target', id],
    queryFn: () => api<TargetDetail>('GET', `/dashboard/targets/${id}`),
    refetchInterval: 3000,
  });
  const canOperate = user.role !== 'viewer';
  if (q.error && !q.data) return <ErrorNote error={q.error} />;
  if (!q.data) return <p className="loading">Loading…</p>;
  const d = q.data;
  const t = d.target;
  return (
    <section aria-labelledby="database-title" className="database-page">
      <h1 id="database-title">
        {t.name} <span className={`badge badge-${t.health}`}>{t.health}</span>
      </h1>
      {q.error && <ErrorNote error={q.error} />}
      <Health detail={d} />
      {canOperate && <Actions detail={d} go={go} />}
      {t.physical && <PointInTime targetId={t.id} name={t.name} canOperate={canOperate} go={go} />}
      <BackupsTable detail={d} canOperate={canOperate} go={go} />
      <Restores detail={d} go={go} />
      <Schedules targetId={t.id} name={t.name} canOperate={canOperate} />
      <Retention
        targetId={t.id}
        canOperate={canOperate}
        backups={`${d.backups[0]?.id ?? ''}:${d.backups.length}`}
      />
    </section>
  );
}

function Health({ detail }: { detail: TargetDetail }) {
  const { target: t, health: h } = detail;
  return (
    <section aria-label="Health" className="card">
      <dl className="facts">
        <dt>Engine</dt>
        <dd>{t.physical ? 'postgresql (physical, point in time)' : t.engine}</dd>
        <dt>Host</dt>
        <dd>
          {t.host} ({t.agentStatus})
        </dd>
        <dt>Last good backup</dt>
        <dd className={t.health === 'overdue' ? 'late' : ''} data-testid="last-good">
          {relative(h.lastGoodBackupAt)}
        </dd>
        <dt>Recovery point (data at risk)</dt>
        <dd>{rpo(h.rpoSeconds)}</dd>
        <dt>Next run</dt>
        <dd>{t.nextRunAt ? relative(t.nextRunAt) : 'not scheduled'}</dd>
        <dt>Last verified</dt>
        <dd>{relative(t.lastVerifiedAt)}</dd>
        <dt>Size</dt>
        <dd>{bytes(t.lastGoodBytes) || '–'}</dd>
        <dt>Storage</dt>
        <dd>{t.storage ?? '–'}</dd>
        <dt>30 days</dt>
        <dd>
          <DayStrip strip={t.strip} name={t.name} />
        </dd>
      </dl>
      {h.alerts.length > 0 && (
        <ul className="alerts" aria-label="Firing alerts">
          {h.alerts.map((a) => (
            <li key={a.kind + a.firedAt}>
              <strong>{a.kind}</strong>: {a.message} <span className="muted">({relative(a.firedAt)})</span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function Actions({ detail, go }: { detail: TargetDetail; go: (p: string) => void }) {
  const t = detail.target;
  const [error, setError] = useState<unknown>();
  const latest = detail.backups.find((b) => b.status === 'completed');
  const run = async (method: string, path: string) => {
    setError(undefined);
    try {
      const job = await api<Job>(method, path);
      go(`/jobs/${job.id}`);
    } catch (err) {
      setError(err);
    }
  };
  return (
    <div className="row-actions page-actions">
      <button type="button" onClick={() => void run('POST', `/targets/${t.id}/backups`)}>
        Backup now
      </button>
      <button
        type="button"
        className="secondary"
        disabled={!latest}
        onClick={() => latest && void run('POST', `/backups/${latest.id}/verify`)}
      >
        Verify latest
      </button>
      {error ? <ErrorNote error={error} /> : null}
      <Cli
        cmd={`dbbackup backup ${shellWord(t.name)} --wait · dbbackup verify --target ${shellWord(t.name)} --latest`}
      />
    </div>
  );
}

function Restores({ detail, go }: { detail: TargetDetail; go: (p: string) => void }) {
  return (
    <section aria-labelledby="restores-title" className="card">
      <h2 id="restores-title">Restore history</h2>
      {detail.restores.length === 0 ? (
        <p className="muted">Never restored.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">State</th>
              <th scope="col">Into</th>
              <th scope="col">Conflict policy</th>
              <th scope="col">Job</th>
            </tr>
          </thead>
          <tbody>
            {detail.restores.map((r) => (
              <tr key={r.jobId} data-testid={`restore-${r.jobId}`}>
                <td>{relative(r.createdAt)}</td>
                <td>
                  {r.state}
                  {r.error ? <span className="error"> — {r.error}</span> : null}
                </td>
                <td>{r.database ?? r.destination ?? ''}</td>
                <td>{r.conflict ?? ''}</td>
                <td>
                  <a
                    href={`/jobs/${r.jobId}`}
                    onClick={(e) => {
                      e.preventDefault();
                      go(`/jobs/${r.jobId}`);
                    }}
                  >
                    {r.jobId.slice(0, 8)}
                  </a>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
