import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { api, download } from './api.js';
import { apiCli, Cli } from './Cli.js';
import { ErrorNote } from './ErrorNote.js';
import { useAction } from './useAction.js';

type Row = {
  id: string;
  at: string;
  actor: string;
  action: string;
  target: string | null;
  outcome: string;
  status: number;
};
type Verdict = { ok: boolean; rows: number; brokenAt?: string; reason?: string };
type Filters = { actor: string; action: string; outcome: string; since: string; until: string };

function query(f: Filters, extra: Record<string, string> = {}): string {
  const q = new URLSearchParams();
  if (f.actor) q.set('actor', f.actor);
  if (f.action) q.set('action', f.action);
  if (f.outcome) q.set('outcome', f.outcome);
  if (f.since) q.set('since', new Date(f.since).toISOString());
  if (f.until) q.set('until', new Date(f.until).toISOString());
  for (const [k, v] of Object.entries(extra)) q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** The audit trail: filter it, export it, and check that its hash chain is whole (admin). */
export function SettingsAudit() {
  const [draft, setDraft] = useState<Filters>({ actor: '', action: '', outcome: '', since: '', until: '' });
  const [filters, setFilters] = useState(draft);
  const q = useQuery({
    queryKey: ['audit', filters],
    queryFn: () => api<{ items: Row[] }>('GET', `/audit${query(filters, { limit: '50' })}`),
  });
  const verify = useAction<Verdict>();
  const exporting = useAction<unknown>();
  const field = (k: keyof Filters, label: string, type = 'text') => (
    <label>
      {label}
      <input type={type} value={draft[k]} onChange={(e) => setDraft({ ...draft, [k]: e.target.value })} />
    </label>
  );
  return (
    <section aria-labelledby="audit-title" className="card">
      <h2 id="audit-title">Audit trail</h2>
      <form
        className="form rules"
        aria-label="Audit filters"
        onSubmit={(e) => {
          e.preventDefault();
          setFilters(draft);
        }}
      >
        {field('actor', 'Who (like user:ada or token:nightly)')}
        {field('action', 'Action (like POST /api/v1/users)')}
        <label>
          Outcome
          <select value={draft.outcome} onChange={(e) => setDraft({ ...draft, outcome: e.target.value })}>
            <option value="">any</option>
            <option>success</option>
            <option>failure</option>
            <option>denied</option>
          </select>
        </label>
        {field('since', 'Since', 'datetime-local')}
        {field('until', 'Until', 'datetime-local')}
        <button type="submit">Filter</button>
      </form>
      <div className="row-actions">
        <button
          type="button"
          className="secondary"
          onClick={() =>
            void exporting.run(() =>
              download(`/audit/export${query(filters, { format: 'csv' })}`, 'dbbackup-audit.csv'),
            )
          }
        >
          Export as CSV
        </button>
        <button
          type="button"
          className="secondary"
          onClick={() => void verify.run(() => api<Verdict>('GET', '/audit/verify'))}
        >
          Verify the chain
        </button>
        <Cli cmd="dbbackup audit export --format csv --out audit.csv" />
      </div>
      {exporting.error ? <ErrorNote error={exporting.error} /> : null}
      {verify.error ? <ErrorNote error={verify.error} /> : null}
      {verify.result && (
        <p role="status" data-testid="audit-verdict" className={verify.result.ok ? '' : 'error'}>
          {verify.result.ok
            ? `The chain is whole: ${verify.result.rows} rows, each hashed over the one before.`
            : `Broken at row ${verify.result.brokenAt}: ${verify.result.reason}`}
        </p>
      )}
      {q.error && <ErrorNote error={q.error} />}
      <table data-testid="audit-rows">
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">Who</th>
            <th scope="col">Action</th>
            <th scope="col">Outcome</th>
          </tr>
        </thead>
        <tbody>
          {q.data?.items.map((r) => (
            <tr key={r.id}>
              <td>{new Date(r.at).toISOString().replace('T', ' ').slice(0, 19)}</td>
              <td>{r.actor}</td>
              <td>
                <code>{r.action}</code>
              </td>
              <td>
                {r.outcome} ({r.status})
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <Cli cmd={apiCli('GET', `/audit${query(filters)}`)} />
    </section>
  );
}
