import { useQuery, useQueryClient } from '@tanstack/react-query';
import { Cron } from 'croner';
import { useMemo, useState } from 'react';
import { ApiError, api } from './api.js';
import { apiCli, Cli, shellWord } from './Cli.js';
import { ErrorNote } from './ErrorNote.js';
import { relative } from './format.js';
import type { Schedule } from './types.js';

type Draft = { id?: string; cron: string; timezone: string; enabled: boolean };
const EMPTY: Draft = { cron: '0 2 * * *', timezone: 'UTC', enabled: true };

/** The next five runs of a cron expression in its time zone, or why it is not one. */
export function nextFive(cron: string, timezone: string): { runs: string[] } | { error: string } {
  try {
    const c = new Cron(cron, { timezone, paused: true });
    const fmt = new Intl.DateTimeFormat('en-GB', {
      timeZone: timezone,
      weekday: 'short',
      year: 'numeric',
      month: 'short',
      day: 'numeric',
      hour: '2-digit',
      minute: '2-digit',
      timeZoneName: 'short',
    });
    return { runs: c.nextRuns(5).map((d) => fmt.format(d)) };
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
}

/** A target's schedules: list, create, edit (next five runs shown as typed), enable, delete. */
export function Schedules({
  targetId,
  name,
  canOperate,
}: {
  targetId: string;
  name: string;
  canOperate: boolean;
}) {
  const qc = useQueryClient();
  const key = ['schedules', targetId];
  const q = useQuery({
    queryKey: key,
    queryFn: () => api<{ items: Schedule[] }>('GET', `/targets/${targetId}/schedules`),
  });
  const [draft, setDraft] = useState<Draft | undefined>();
  const [error, setError] = useState<unknown>();
  const act = async (fn: () => Promise<unknown>) => {
    setError(undefined);
    try {
      await fn();
      await qc.invalidateQueries({ queryKey: key });
      await qc.invalidateQueries({ queryKey: ['dashboard/target', targetId] });
    } catch (err) {
      setError(err);
    }
  };
  return (
    <section aria-labelledby="schedules-title" className="card">
      <h2 id="schedules-title">Schedules</h2>
      {q.error && <ErrorNote error={q.error} />}
      {error ? <ErrorNote error={error} /> : null}
      {q.data && q.data.items.length === 0 && (
        <p className="muted">No schedule: this database is backed up only on demand.</p>
      )}
      <ul className="plain">
        {q.data?.items.map((s) => (
          <li key={s.id} data-testid={`schedule-${s.cron}`}>
            <code>{s.cron}</code> ({s.timezone}) — {s.enabled ? `next ${relative(s.nextRun)}` : 'disabled'}
            {canOperate && (
              <span className="row-actions">
                <button type="button" className="secondary" onClick={() => setDraft({ ...s })}>
                  Edit
                </button>
                <button
                  type="button"
                  className="secondary"
                  title={`dbbackup schedule ${s.enabled ? 'disable' : 'enable'} ${name} ${s.id}`}
                  onClick={() =>
                    void act(() =>
                      api('PATCH', `/targets/${targetId}/schedules/${s.id}`, { enabled: !s.enabled }),
                    )
                  }
                >
                  {s.enabled ? 'Disable' : 'Enable'}
                </button>
                <button
                  type="button"
                  className="danger"
                  title={apiCli('DELETE', `/targets/${targetId}/schedules/${s.id}`)}
                  onClick={() => void act(() => api('DELETE', `/targets/${targetId}/schedules/${s.id}`))}
                >
                  Delete
                </button>
              </span>
            )}
          </li>
        ))}
      </ul>
      <Cli cmd={`dbbackup schedule ls ${shellWord(name)}`} />
      {canOperate && !draft && (
        <button type="button" onClick={() => setDraft(EMPTY)}>
          Add a schedule
        </button>
      )}
      {canOperate && draft && (
        <ScheduleForm
          targetId={targetId}
          name={name}
          draft={draft}
          onDone={() => {
            setDraft(undefined);
            void qc.invalidateQueries({ queryKey: key });
            void qc.invalidateQueries({ queryKey: ['dashboard/target', targetId] });
          }}
        />
      )}
    </section>
  );
}

function ScheduleForm({
  targetId,
  name,
  draft,
  onDone,
}: {
  targetId: string;
  name: string;
  draft: Draft;
  onDone: () => void;
}) {
  const [d, setD] = useState(draft);
  const [clash, setClash] = useState<string | undefined>();
  const [allowClash, setAllowClash] = useState(false);
  const [error, setError] = useState<unknown>();
  const preview = useMemo(() => nextFive(d.cron, d.timezone), [d.cron, d.timezone]);
  const body = {
    cron: d.cron,
    timezone: d.timezone,
    enabled: d.enabled,
    ...(allowClash ? { allowClash } : {}),
  };
  const save = async () => {
    setError(undefined);
    try {
      if (d.id) await api('PATCH', `/targets/${targetId}/schedules/${d.id}`, body);
      else await api('POST', `/targets/${targetId}/schedules`, body);
      onDone();
    } catch (err) {
      if (err instanceof ApiError && err.type?.endsWith('/schedule-clash')) setClash(err.message);
      else setError(err);
    }
  };
  const cli = d.id
    ? apiCli('PATCH', `/targets/${targetId}/schedules/${d.id}`, body)
    : `dbbackup schedule create ${shellWord(name)} --cron ${shellWord(d.cron)} --timezone ${shellWord(d.timezone)}`;
  return (
    <form
      className="form"
      aria-label={d.id ? 'Edit the schedule' : 'New schedule'}
      onSubmit={(e) => {
        e.preventDefault();
        void save();
      }}
    >
      <label>
        Cron expression
        <input value={d.cron} onChange={(e) => setD({ ...d, cron: e.target.value })} spellCheck={false} />
      </label>
      <label>
        Time zone
        <input
          value={d.timezone}
          onChange={(e) => setD({ ...d, timezone: e.target.value })}
          spellCheck={false}
        />
      </label>
      <label className="check">
        <input
          type="checkbox"
          checked={d.enabled}
          onChange={(e) => setD({ ...d, enabled: e.target.checked })}
        />
        Enabled
      </label>
      <div aria-live="polite" data-testid="next-runs">
        {'error' in preview ? (
          <p className="error">Not a schedule: {preview.error}</p>
        ) : (
          <>
            <p>Next five runs in {d.timezone}:</p>
            <ol className="runs">
              {preview.runs.map((r) => (
                <li key={r}>{r}</li>
              ))}
            </ol>
          </>
        )}
      </div>
      {clash && (
        <div className="warning" role="alert" data-testid="schedule-clash">
          <p>{clash}</p>
          <label className="check">
            <input type="checkbox" checked={allowClash} onChange={(e) => setAllowClash(e.target.checked)} />
            Save it anyway
          </label>
        </div>
      )}
      {error ? <ErrorNote error={error} /> : null}
      <div className="row-actions">
        <button type="submit" disabled={'error' in preview}>
          {d.id ? 'Save the schedule' : 'Create the schedule'}
        </button>
        <button type="button" className="secondary" onClick={onDone}>
          Cancel
        </button>
      </div>
      <Cli cmd={cli} />
    </form>
  );
}
