import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { api } from './api.js';
import { apiCli, Cli } from './Cli.js';
import { ErrorNote } from './ErrorNote.js';
import { bytes } from './format.js';

const RULES = [
  ['keepLast', 'Keep the last', 'backups'],
  ['keepDays', 'Keep every backup of the last', 'days'],
  ['daily', 'Keep one a day for', 'days'],
  ['weekly', 'Keep one a week for', 'weeks'],
  ['monthly', 'Keep one a month for', 'months'],
  ['yearly', 'Keep one a year for', 'years'],
] as const;
type Policy = Partial<Record<(typeof RULES)[number][0], number>>;
type Preview = {
  policy: Policy;
  keep: { id: string; reasons: string[] }[];
  delete: { id: string; reason: string }[];
  /** A physical target's archived WAL older than the oldest base backup left. */
  wal: { before: string; files: number; bytes: number } | null;
};

function previewPath(targetId: string, p: Policy): string {
  const q = Object.entries(p).map(([k, v]) => `${k}=${v}`);
  return `/targets/${targetId}/retention/preview?${q.length ? q.join('&') : 'empty=true'}`;
}

/** A target's retention policy, and before it is saved, what it would remove and why. */
export function Retention({
  targetId,
  canOperate,
  backups,
}: {
  targetId: string;
  canOperate: boolean;
  /** The newest backup's id and how many the page lists: a new or deleted backup renews the preview. */
  backups: string;
}) {
  const qc = useQueryClient();
  const saved = useQuery({
    queryKey: ['retention', targetId],
    queryFn: () => api<{ policy: Policy }>('GET', `/targets/${targetId}/retention`),
  });
  const [policy, setPolicy] = useState<Policy | undefined>();
  useEffect(() => {
    if (saved.data && policy === undefined) setPolicy(saved.data.policy);
  }, [saved.data, policy]);
  const shown = policy ?? {};
  const preview = useQuery({
    queryKey: ['retention-preview', targetId, shown, backups],
    queryFn: () => api<Preview>('GET', previewPath(targetId, shown)),
    enabled: policy !== undefined,
  });
  const [error, setError] = useState<unknown>();
  const [done, setDone] = useState(false);
  const save = async () => {
    setError(undefined);
    setDone(false);
    try {
      await api('PUT', `/targets/${targetId}/retention`, { policy: shown });
      await qc.invalidateQueries({ queryKey: ['retention', targetId] });
      setDone(true);
    } catch (err) {
      setError(err);
    }
  };
  const set = (k: keyof Policy, v: string) => {
    const next = { ...shown };
    if (v === '') delete next[k];
    else next[k] = Number(v);
    setPolicy(next);
    setDone(false);
  };
  return (
    <section aria-labelledby="retention-title" className="card">
      <h2 id="retention-title">Retention</h2>
      {saved.error && <ErrorNote error={saved.error} />}
      <p className="muted">
        A backup stays when any rule keeps it; the newest good backup always stays. No rule: every backup
        stays.
      </p>
      <form
        className="form rules"
        aria-label="Retention policy"
        onSubmit={(e) => {
          e.preventDefault();
          void save();
        }}
      >
        {RULES.map(([k, label, unit]) => (
          <label key={k}>
            {label}
            <input
              type="number"
              min={1}
              value={shown[k] ?? ''}
              disabled={!canOperate}
              onChange={(e) => set(k, e.target.value)}
            />
            {unit}
          </label>
        ))}
        {canOperate && <button type="submit">Save the policy</button>}
        {done && <span role="status">Saved; the agent applies it after each good backup and daily.</span>}
        {error ? <ErrorNote error={error} /> : null}
      </form>
      {canOperate && <Cli cmd={apiCli('PUT', `/targets/${targetId}/retention`, { policy: shown })} />}
      <h3>What this policy would remove now</h3>
      {preview.error && <ErrorNote error={preview.error} />}
      {preview.data && (
        <div data-testid="retention-preview">
          <p>
            {preview.data.delete.length} of {preview.data.delete.length + preview.data.keep.length} backups
            would be removed.
          </p>
          {preview.data.wal && (
            <p data-testid="retention-wal">
              {preview.data.wal.files
                ? `With them, ${preview.data.wal.files} archived WAL files (${bytes(preview.data.wal.bytes)}) older than ${preview.data.wal.before}, where the oldest base backup left starts: points in time before it could no longer be restored.`
                : `No archived WAL would be removed: none is older than ${preview.data.wal.before}, where the oldest base backup left starts.`}
            </p>
          )}
          <ul className="plain">
            {preview.data.delete.map((d) => (
              <li key={d.id}>
                <code>{d.id.slice(0, 8)}</code> — {d.reason}
              </li>
            ))}
          </ul>
        </div>
      )}
    </section>
  );
}
