import { useQuery } from '@tanstack/react-query';
import { api, type User } from './api.js';
import { DayChart } from './DayChart.js';
import { DayStrip } from './DayStrip.js';
import { ErrorNote } from './ErrorNote.js';
import { bytes } from './format.js';
import type { Alert, FleetOverview, Job, TargetRow } from './types.js';

/** The state of the whole fleet in one line: what an on-call engineer reads first. */
export function fleetSentence(t: FleetOverview['targets']): string {
  if (t.total === 0) return 'No databases are set up yet: add a host and adopt its databases.';
  const bad = t.overdue + t.failing + t.neverBackedUp;
  const now = t.running ? ` Backing up ${t.running} now.` : '';
  if (bad === 0) return `All ${t.total} ${t.total === 1 ? 'database is' : 'databases are'} backed up.${now}`;
  const parts = [
    t.failing ? `${t.failing} failing` : '',
    t.overdue ? `${t.overdue} overdue` : '',
    t.neverBackedUp ? `${t.neverBackedUp} never backed up` : '',
  ].filter(Boolean);
  return `${bad} of ${t.total} databases need attention (${parts.join(', ')}).${now}`;
}

const ORDER = { failing: 0, overdue: 1, never: 2, running: 3, healthy: 4 } as const;

export function Overview({ user, go }: { user: User; go: (p: string) => void }) {
  const overview = useQuery({
    queryKey: ['dashboard/overview'],
    queryFn: () => api<FleetOverview>('GET', '/dashboard/overview'),
  });
  const targets = useQuery({
    queryKey: ['dashboard/targets'],
    queryFn: () => api<{ items: TargetRow[] }>('GET', '/dashboard/targets'),
  });
  const alerts = useQuery({
    queryKey: ['alerts/firing'],
    queryFn: () => api<{ items: Alert[] }>('GET', '/alerts?state=firing'),
  });
  const running = useQuery({
    queryKey: ['jobs/running'],
    queryFn: () => api<{ items: Job[] }>('GET', '/jobs?state=running'),
    refetchInterval: 2000,
  });
  const error = overview.error ?? targets.error ?? alerts.error ?? running.error;
  const o = overview.data;
  const t = o?.targets;
  const jobs = running.data?.items ?? [];
  const tone =
    !t || t.total === 0 ? 'neutral' : t.overdue + t.failing + t.neverBackedUp === 0 ? 'good' : 'bad';
  const worst = [...(targets.data?.items ?? [])]
    .sort((a, b) => ORDER[a.health] - ORDER[b.health])
    .slice(0, 30);
  return (
    <section aria-labelledby="overview-title">
      <h1 id="overview-title">Overview</h1>
      {error && <ErrorNote error={error} />}
      {t && (
        <p className={`sentence ${tone}`} data-testid="fleet-sentence">
          {fleetSentence(t)}
        </p>
      )}
      <p className="cli">
        CLI: <code>dbbackup status</code>
      </p>
      <div className="tiles">
        <Tile label="Agents online" value={o?.agents.online} testId="agents-online" />
        <Tile label="Agents offline" value={o?.agents.offline} testId="agents-offline" bad />
        <Tile label="Databases" value={t?.total} testId="targets-total" />
        <Tile
          label="Healthy"
          value={t ? t.total - t.overdue - t.failing - t.neverBackedUp : undefined}
          testId="targets-healthy"
        />
        <Tile label="Overdue" value={t?.overdue} testId="targets-overdue" bad />
        <Tile label="Failing" value={t?.failing} testId="targets-failing" bad />
        <Tile label="Never backed up" value={t?.neverBackedUp} testId="targets-never" bad />
        <Tile
          label={`Backups in 24 h${o?.last24h.successRate != null ? `, ${Math.round(o.last24h.successRate * 100)} % good` : ''}`}
          value={o ? o.last24h.succeeded + o.last24h.failed : undefined}
          testId="backups-24h"
        />
        <Tile label="Stored" value={o ? bytes(o.bytesStored) : undefined} testId="bytes-stored" />
      </div>
      {o && <DayChart days={o.days} />}
      <h2>Firing alerts</h2>
      {alerts.data && alerts.data.items.length === 0 && <p>No alert is firing.</p>}
      <ul className="alerts" data-testid="alerts">
        {alerts.data?.items.map((a) => (
          <li key={a.id}>
            <strong>{a.kind.replaceAll('_', ' ')}</strong>: {a.message}
          </li>
        ))}
      </ul>
      <h2>Running now</h2>
      {running.data && jobs.length === 0 && <p>No job is running.</p>}
      <ul className="running">
        {jobs.map((j) => (
          <li key={j.id}>
            <a
              href={`/jobs/${j.id}`}
              onClick={(e) => {
                e.preventDefault();
                go(`/jobs/${j.id}`);
              }}
            >
              {j.type} {j.id.slice(0, 8)}
            </a>{' '}
            {j.progress?.phase ?? 'starting'} {bytes(j.progress?.bytesDumped)}
          </li>
        ))}
      </ul>
      <h2>Last 30 days, the databases needing attention first</h2>
      <table className="strips">
        <thead>
          <tr>
            <th scope="col">Database</th>
            <th scope="col">Health</th>
            <th scope="col">Days (oldest to today)</th>
          </tr>
        </thead>
        <tbody>
          {worst.map((r) => (
            <tr key={r.id}>
              <td>{r.name}</td>
              <td>
                <span className={`badge badge-${r.health}`}>{r.health}</span>
              </td>
              <td>
                <DayStrip strip={r.strip} name={r.name} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <p className="muted">Signed in as {user.role}: the server checks every action against this role.</p>
    </section>
  );
}

function Tile({
  label,
  value,
  bad,
  testId,
}: {
  label: string;
  value: number | string | undefined;
  bad?: boolean;
  testId: string;
}) {
  return (
    <div className={`tile ${bad && value ? 'bad' : ''}`}>
      <span className="value" data-testid={testId}>
        {value ?? '…'}
      </span>
      <span className="label">{label}</span>
    </div>
  );
}
