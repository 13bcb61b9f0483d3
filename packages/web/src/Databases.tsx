import { useQuery } from '@tanstack/react-query';
import { useMemo, useState } from 'react';
import { type ApiError, api, type User } from './api.js';
import { DayStrip } from './DayStrip.js';
import { ErrorNote } from './ErrorNote.js';
import { bytes, relative, trend } from './format.js';
import type { Job, TargetRow } from './types.js';

type SortKey = 'name' | 'health' | 'lastGoodAt' | 'host' | 'lastGoodBytes';
const HEALTH_ORDER = { failing: 0, overdue: 1, never: 2, running: 3, healthy: 4 } as const;
/** Rows per page: a page renders fast whatever the fleet's size. */
const PAGE = 100;

/** Every database (target) in one table: filter, sort, and act (operators). */
export function Databases({ user, go }: { user: User; go: (p: string) => void }) {
  const q = useQuery({
    queryKey: ['dashboard/targets'],
    queryFn: () => api<{ items: TargetRow[] }>('GET', '/dashboard/targets'),
  });
  const [filter, setFilter] = useState('');
  const [sort, setSort] = useState<{ key: SortKey; desc: boolean }>({ key: 'health', desc: false });
  const [actionError, setActionError] = useState<{ id: string; error: unknown } | undefined>();
  const [page, setPage] = useState(0);
  const canOperate = user.role !== 'viewer';
  const rows = useMemo(() => {
    const f = filter.trim().toLowerCase();
    const items = (q.data?.items ?? []).filter(
      (r) =>
        !f || [r.name, r.engine, r.host, r.health, r.storage ?? ''].some((x) => x.toLowerCase().includes(f)),
    );
    const val = (r: TargetRow): string | number =>
      sort.key === 'health' ? HEALTH_ORDER[r.health] : ((r[sort.key] as string | number | null) ?? '');
    return items.sort((a, b) => {
      const x = val(a);
      const y = val(b);
      const c = x < y ? -1 : x > y ? 1 : a.name.localeCompare(b.name);
      return sort.desc ? -c : c;
    });
  }, [q.data, filter, sort]);
  const pages = Math.max(1, Math.ceil(rows.length / PAGE));
  const at = Math.min(page, pages - 1);
  const shown = rows.slice(at * PAGE, (at + 1) * PAGE);
  const act = async (r: TargetRow, path: string) => {
    setActionError(undefined);
    try {
      const job = await api<Job>('POST', path);
      go(`/jobs/${job.id}`);
    } catch (error) {
      setActionError({ id: r.id, error });
    }
  };
  const header = (key: SortKey, label: string) => (
    <th scope="col" aria-sort={sort.key === key ? (sort.desc ? 'descending' : 'ascending') : 'none'}>
      <button
        type="button"
        className="sort"
        onClick={() => {
          setSort({ key, desc: sort.key === key ? !sort.desc : false });
          setPage(0);
        }}
      >
        {label}
      </button>
    </th>
  );
  return (
    <section aria-labelledby="databases-title">
      <h1 id="databases-title">Databases</h1>
      {q.error && <ErrorNote error={q.error} />}
      <p className="cli">
        CLI: <code>dbbackup targets</code>
      </p>
      <label className="filter">
        Filter
        <input
          type="search"
          value={filter}
          onChange={(e) => {
            setFilter(e.target.value);
            setPage(0);
          }}
          placeholder="name, engine, host, health"
        />
      </label>
      <p className="muted" data-testid="databases-count">
        {rows.length} of {q.data?.items.length ?? 0} databases
      </p>
      {pages > 1 && (
        <nav className="pager" aria-label="Pages of databases">
          <button type="button" disabled={at === 0} onClick={() => setPage(at - 1)}>
            Previous
          </button>
          <span>
            {at * PAGE + 1}–{Math.min(rows.length, (at + 1) * PAGE)} of {rows.length}
          </span>
          <button type="button" disabled={at >= pages - 1} onClick={() => setPage(at + 1)}>
            Next
          </button>
        </nav>
      )}
      <table className="databases">
        <thead>
          <tr>
            {header('name', 'Database')}
            {header('health', 'Health')}
            {header('host', 'Host')}
            {header('lastGoodAt', 'Last good backup')}
            <th scope="col">Next run</th>
            <th scope="col">Last verified</th>
            {header('lastGoodBytes', 'Size')}
            <th scope="col">Storage</th>
            <th scope="col">30 days</th>
            {canOperate && <th scope="col">Actions</th>}
          </tr>
        </thead>
        <tbody>
          {shown.map((r) => (
            <tr key={r.id} data-testid={`target-${r.name}`}>
              <td>
                <a
                  href={`/databases/${r.id}`}
                  onClick={(e) => {
                    e.preventDefault();
                    go(`/databases/${r.id}`);
                  }}
                >
                  {r.name}
                </a>{' '}
                <span className="muted">{r.physical ? 'postgresql (physical)' : r.engine}</span>
              </td>
              <td>
                <span className={`badge badge-${r.health}`}>{r.health}</span>
              </td>
              <td>
                {r.host} <span className="muted">({r.agentStatus})</span>
              </td>
              <td className={r.health === 'overdue' ? 'late' : ''}>{relative(r.lastGoodAt)}</td>
              <td>{r.nextRunAt ? relative(r.nextRunAt) : 'not scheduled'}</td>
              <td>{relative(r.lastVerifiedAt)}</td>
              <td>
                {bytes(r.lastGoodBytes)}{' '}
                <span className="muted" title="against the backup before">
                  {trend(r.lastGoodBytes, r.prevGoodBytes)}
                </span>
              </td>
              <td>{r.storage ?? ''}</td>
              <td>
                <DayStrip strip={r.strip} name={r.name} />
              </td>
              {canOperate && (
                <td>
                  <div className="row-actions">
                    <button type="button" onClick={() => void act(r, `/targets/${r.id}/backups`)}>
                      Backup now
                    </button>
                    {r.lastGoodId && (
                      <button
                        type="button"
                        className="secondary"
                        onClick={() => void act(r, `/backups/${r.lastGoodId}/verify`)}
                      >
                        Verify latest
                      </button>
                    )}
                    {r.lastGoodId && !r.physical && (
                      <button type="button" className="secondary" onClick={() => go(`/databases/${r.id}`)}>
                        Restore…
                      </button>
                    )}
                  </div>
                  {actionError?.id === r.id && <ErrorNote error={actionError.error as ApiError} />}
                  <div className="cli">
                    <code>dbbackup backup {r.name}</code>
                  </div>
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
