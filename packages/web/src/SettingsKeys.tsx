import { useQuery } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { api, download } from './api.js';
import { Cli } from './Cli.js';
import { ErrorNote } from './ErrorNote.js';
import { relative } from './format.js';
import { useAction } from './useAction.js';

type Rotation = {
  id: string;
  toKid: string;
  state: string;
  total: number;
  done: number;
  lastError: string | null;
  createdAt: string;
};

/** The key-encryption key: export it for safekeeping, rotate it with live progress (admin). */
export function SettingsKeys() {
  const kek = useQuery({ queryKey: ['kek'], queryFn: () => api<{ kid: string }>('GET', '/keys/kek') });
  const rotations = useQuery({
    queryKey: ['rotations'],
    queryFn: () => api<{ items: Rotation[] }>('GET', '/keys/rotations'),
  });
  const [following, setFollowing] = useState<string | undefined>();
  const running = rotations.data?.items.find((r) => r.state === 'running')?.id;
  const current = following ?? running;
  const live = useQuery({
    queryKey: ['rotation', current],
    queryFn: () => api<Rotation>('GET', `/keys/rotations/${current}`),
    enabled: current !== undefined,
    refetchInterval: (q) => (q.state.data && q.state.data.state !== 'running' ? false : 1000),
  });
  useEffect(() => {
    if (live.data && live.data.state !== 'running') void rotations.refetch();
  }, [live.data, rotations.refetch]);
  const rotate = useAction<unknown>();
  const exporting = useAction<unknown>();
  const [confirmExport, setConfirmExport] = useState(false);
  const r = live.data;
  return (
    <section aria-labelledby="keys-title" className="card">
      <h2 id="keys-title">Keys</h2>
      {kek.error && <ErrorNote error={kek.error} />}
      <p>
        Every backup’s data key is wrapped to the key-encryption key{' '}
        <code data-testid="kek-id">{kek.data?.kid ?? '…'}</code>. With its export and the bucket,{' '}
        <code>dbbackup-agent decrypt</code> restores without a control plane.
      </p>
      <div className="row-actions">
        {confirmExport ? (
          <>
            <button
              type="button"
              className="danger"
              onClick={() =>
                void exporting.run(async () => {
                  await download('/keys/kek/export', `dbbackup-kek-${kek.data?.kid ?? 'key'}.json`, 'POST');
                  setConfirmExport(false);
                })
              }
            >
              Download the private key
            </button>
            <button type="button" className="secondary" onClick={() => setConfirmExport(false)}>
              Cancel
            </button>
          </>
        ) : (
          <button type="button" className="secondary" onClick={() => setConfirmExport(true)}>
            Export the key
          </button>
        )}
        <button
          type="button"
          disabled={r?.state === 'running' || rotate.busy}
          onClick={() =>
            void rotate.run(async () => {
              const started = await api<Rotation>('POST', '/keys/kek/rotate');
              setFollowing(started.id);
            })
          }
        >
          Rotate the key
        </button>
        <Cli cmd="dbbackup rotate-keys --wait" />
      </div>
      {confirmExport && (
        <p className="warning">
          Whoever holds this file can read every backup. Keep it offline, away from the bucket.
        </p>
      )}
      {exporting.error ? <ErrorNote error={exporting.error} /> : null}
      {rotate.error ? <ErrorNote error={rotate.error} /> : null}
      {r && (
        <div data-testid="rotation" aria-live="polite">
          <p>
            Rotation to <code>{r.toKid}</code>: {r.state}, {r.done} of {r.total} backups re-wrapped
            {r.lastError ? ` (last error: ${r.lastError})` : ''}.
          </p>
          <progress max={Math.max(1, r.total)} value={r.done} aria-label="Rotation progress" />
        </div>
      )}
      {(rotations.data?.items.length ?? 0) > 0 && (
        <ul className="plain muted">
          {rotations.data?.items.slice(0, 5).map((x) => (
            <li key={x.id}>
              {relative(x.createdAt)}: to <code>{x.toKid}</code>, {x.state} ({x.done}/{x.total})
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
