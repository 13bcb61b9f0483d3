import { useQuery } from '@tanstack/react-query';
import { api, type User } from './api.js';
import { ErrorNote } from './ErrorNote.js';

type AgentSummary = { total: number; online: number; offline: number; pending: number; revoked: number };
type TargetSummary = { total: number; overdue: number; failing: number; neverBackedUp: number };
type Alert = { id: string; kind: string; message: string; firedAt?: string; targetId?: string | null };
type Job = {
  id: string;
  type: string;
  state: string;
  targetId: string | null;
  progress: { phase?: string; bytesIn?: number; bytesOut?: number } | null;
  startedAt: string | null;
};

/** The state of the whole fleet in one line: what an on-call engineer reads first. */
export function fleetSentence(t: TargetSummary, running: number): string {
  if (t.total === 0) return 'No databases are set up yet: add a host and adopt its databases.';
  const bad = t.overdue + t.failing + t.neverBackedUp;
  const now = running ? ` Backing up ${running} now.` : '';
  if (bad === 0) return `All ${t.total} ${t.total === 1 ? 'database is' : 'databases are'} backed up.${now}`;
  const parts = [
    t.failing ? `${t.failing} failing` : '',
    t.overdue ? `${t.overdue} overdue` : '',
    t.neverBackedUp ? `${t.neverBackedUp} never backed up` : '',
  ].filter(Boolean);
  return `${bad} of ${t.total} databases need attention (${parts.join(', ')}).${now}`;
}

const bytes = (n: number | undefined) =>
  n === undefined
    ? ''
    : n >= 1e9
      ? `${(n / 1e9).toFixed(1)} GB`
      : n >= 1e6
        ? `${(n / 1e6).toFixed(1)} MB`
        : `${Math.round(n / 1e3)} kB`;

export function Overview({ user }: { user: User }) {
  const agents = useQuery({
    queryKey: ['agents/summary'],
    queryFn: () => api<AgentSummary>('GET', '/agents/summary'),
  });
  const targets = useQuery({
    queryKey: ['targets/summary'],
    queryFn: () => api<TargetSummary>('GET', '/targets/summary'),
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
  const error = agents.error ?? targets.error ?? alerts.error ?? running.error;
  const t = targets.data;
  const jobs = running.data?.items ?? [];
  const ok = t && t.overdue + t.failing + t.neverBackedUp === 0;
  return (
    <section aria-labelledby="overview-title">
      <h1 id="overview-title">Overview</h1>
      {error && <ErrorNote error={error} />}
      {t && (
        <p className={`sentence ${ok ? 'good' : 'bad'}`} data-testid="fleet-sentence">
          {fleetSentence(t, jobs.length)}
        </p>
      )}
      <p className="cli">
        CLI: <code>dbbackup status</code>
      </p>
      <div className="tiles">
        <Tile label="Agents online" value={agents.data?.online} testId="agents-online" />
        <Tile label="Agents offline" value={agents.data?.offline} testId="agents-offline" bad />
        <Tile label="Databases" value={t?.total} testId="targets-total" />
        <Tile label="Overdue" value={t?.overdue} testId="targets-overdue" bad />
        <Tile label="Failing" value={t?.failing} testId="targets-failing" bad />
        <Tile label="Never backed up" value={t?.neverBackedUp} testId="targets-never" bad />
      </div>
      <h2>Firing alerts</h2>
      {alerts.data && alerts.data.items.length === 0 && <p>No alert is firing.</p>}
      <ul className="alerts">
        {alerts.data?.items.map((a) => (
          <li key={a.id}>
            <strong>{a.kind.replaceAll('_', ' ')}</strong>: {a.message}
          </li>
        ))}
      </ul>
      <h2>Running now</h2>
      {running.data && jobs.length === 0 && <p>No job is running.</p>}
      <table className="jobs" hidden={jobs.length === 0}>
        <thead>
          <tr>
            <th scope="col">Job</th>
            <th scope="col">Phase</th>
            <th scope="col">Read</th>
            <th scope="col">Stored</th>
          </tr>
        </thead>
        <tbody>
          {jobs.map((j) => (
            <tr key={j.id}>
              <td>
                {j.type} <code>{j.id.slice(0, 8)}</code>
              </td>
              <td>{j.progress?.phase ?? 'starting'}</td>
              <td>{bytes(j.progress?.bytesIn)}</td>
              <td>{bytes(j.progress?.bytesOut)}</td>
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
  value: number | undefined;
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
