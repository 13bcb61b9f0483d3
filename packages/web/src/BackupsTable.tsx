import { useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { api } from './api.js';
import { apiCli, Cli } from './Cli.js';
import { ErrorNote } from './ErrorNote.js';
import { bytes, relative } from './format.js';
import { RestoreDialog } from './RestoreDialog.js';
import type { BackupRow, Job, TargetDetail } from './types.js';

function duration(ms: number | null): string {
  if (ms === null) return '';
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

/** A target's newest backups: status, sizes, duration, verified; Restore, Verify, Delete, logs. */
export function BackupsTable({
  detail,
  canOperate,
  go,
}: {
  detail: TargetDetail;
  canOperate: boolean;
  go: (p: string) => void;
}) {
  const qc = useQueryClient();
  const { target, backups } = detail;
  const [restoring, setRestoring] = useState<BackupRow | undefined>();
  const [confirming, setConfirming] = useState<string | undefined>();
  const [note, setNote] = useState<{ id: string; error?: unknown; text?: string } | undefined>();
  const verify = async (b: BackupRow) => {
    setNote(undefined);
    try {
      const job = await api<Job>('POST', `/backups/${b.id}/verify`);
      go(`/jobs/${job.id}`);
    } catch (error) {
      setNote({ id: b.id, error });
    }
  };
  const remove = async (b: BackupRow) => {
    setConfirming(undefined);
    setNote(undefined);
    try {
      await api('DELETE', `/backups/${b.id}`);
      setNote({ id: b.id, text: 'Deleting: the agent removes it from storage.' });
      await qc.invalidateQueries({ queryKey: ['dashboard/target', target.id] });
    } catch (error) {
      setNote({ id: b.id, error });
    }
  };
  return (
    <section aria-labelledby="backups-title" className="card">
      <h2 id="backups-title">Backups</h2>
      <Cli cmd={`dbbackup backups ls --target ${target.name}`} />
      {backups.length === 0 && <p className="muted">No backup yet.</p>}
      {backups.length > 0 && (
        <table className="backups">
          <thead>
            <tr>
              <th scope="col">Started</th>
              <th scope="col">Status</th>
              <th scope="col">Stored</th>
              <th scope="col">Dump</th>
              <th scope="col">Duration</th>
              <th scope="col">Verified</th>
              <th scope="col">Storage</th>
              <th scope="col">Log</th>
              {canOperate && <th scope="col">Actions</th>}
            </tr>
          </thead>
          <tbody>
            {backups.map((b) => (
              <tr key={b.id} data-testid={`backup-${b.id}`}>
                <td title={b.startedAt}>{relative(b.startedAt)}</td>
                <td>{b.status}</td>
                <td>{bytes(b.sizeBytes)}</td>
                <td>{bytes(b.dumpBytes)}</td>
                <td>{duration(b.durationMs)}</td>
                <td>
                  {b.verified ? (
                    <span className={`badge badge-${b.verified === 'passed' ? 'healthy' : 'failing'}`}>
                      {b.verified === 'passed' ? 'verified' : 'verify failed'}
                    </span>
                  ) : (
                    <span className="muted">not verified</span>
                  )}
                </td>
                <td>{b.storage ?? ''}</td>
                <td>
                  {b.jobId ? (
                    <a
                      href={`/jobs/${b.jobId}`}
                      onClick={(e) => {
                        e.preventDefault();
                        go(`/jobs/${b.jobId}`);
                      }}
                    >
                      Log<span className="visually-hidden"> of the backup {relative(b.startedAt)}</span>
                    </a>
                  ) : (
                    <span className="muted">scheduled offline</span>
                  )}
                </td>
                {canOperate && (
                  <td>
                    <div className="row-actions">
                      {!b.physical && (
                        <button
                          type="button"
                          onClick={() => setRestoring(b)}
                          title={`dbbackup restore ${b.id}`}
                        >
                          Restore
                        </button>
                      )}
                      <button
                        type="button"
                        className="secondary"
                        onClick={() => void verify(b)}
                        title={`dbbackup verify ${b.id}`}
                      >
                        Verify
                      </button>
                      {confirming === b.id ? (
                        <>
                          <button type="button" className="danger" onClick={() => void remove(b)}>
                            Delete for good
                          </button>
                          <button
                            type="button"
                            className="secondary"
                            onClick={() => setConfirming(undefined)}
                          >
                            Keep it
                          </button>
                          <Cli cmd={apiCli('DELETE', `/backups/${b.id}`)} />
                        </>
                      ) : (
                        <button type="button" className="danger" onClick={() => setConfirming(b.id)}>
                          Delete
                        </button>
                      )}
                      {note?.id === b.id && note.error ? <ErrorNote error={note.error} /> : null}
                      {note?.id === b.id && note.text ? <span role="status">{note.text}</span> : null}
                    </div>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {restoring && (
        <RestoreDialog
          backup={restoring}
          targetId={target.id}
          targetName={target.name}
          engine={target.engine}
          go={go}
          onClose={() => setRestoring(undefined)}
        />
      )}
    </section>
  );
}
