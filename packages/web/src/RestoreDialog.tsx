import { useQuery } from '@tanstack/react-query';
import { useEffect, useRef, useState } from 'react';
import { api } from './api.js';
import { Cli, shellWord } from './Cli.js';
import { ErrorNote } from './ErrorNote.js';
import type { BackupRow, Job, TargetRow } from './types.js';

const POLICIES = [
  ['create', 'Create the destination; stop without changing anything if it already exists.'],
  ['fail', 'Restore into an existing empty destination; stop without changing anything if it holds data.'],
  ['clean', 'Drop the objects the backup holds from the existing destination, then restore over it.'],
] as const;

/** Restore one backup: where to, what to do when the destination exists, which tables. */
export function RestoreDialog({
  backup,
  targetId,
  targetName,
  engine,
  go,
  onClose,
}: {
  backup: BackupRow;
  targetId: string;
  targetName: string;
  engine: string;
  go: (p: string) => void;
  onClose: () => void;
}) {
  const usesPath = engine === 'sqlite' || engine === 'files';
  const [database, setDatabase] = useState(usesPath ? '' : `${targetName}_restored`);
  const [conflict, setConflict] = useState<'fail' | 'create' | 'clean'>('create');
  const [tables, setTables] = useState<string[]>([]);
  const [through, setThrough] = useState(targetId);
  // Another target of the same engine can take the restore: its server, its credentials.
  const targets = useQuery({
    queryKey: ['dashboard/targets'],
    queryFn: () => api<{ items: TargetRow[] }>('GET', '/dashboard/targets'),
  });
  const servers = (targets.data?.items ?? []).filter((t) => t.engine === engine && !t.physical);
  const throughName = servers.find((t) => t.id === through)?.name;
  const [error, setError] = useState<unknown>();
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
  }, []);
  const body = {
    ...(through !== targetId ? { targetId: through } : {}),
    ...(database ? { database } : {}),
    conflict,
    ...(tables.length ? { tables } : {}),
  };
  const restore = async () => {
    setError(undefined);
    try {
      const job = await api<Job>('POST', `/backups/${backup.id}/restore`, body);
      go(`/jobs/${job.id}`);
    } catch (err) {
      setError(err);
    }
  };
  const cli = [
    `dbbackup restore ${backup.id}`,
    through !== targetId && throughName ? ` --target ${shellWord(throughName)}` : '',
    database ? ` --to ${shellWord(database)}` : '',
    ` --on-conflict ${conflict}`,
    tables.length ? ` --tables ${shellWord(tables.join(','))}` : '',
    ' --wait',
  ].join('');
  return (
    <dialog ref={ref} aria-labelledby="restore-title" onClose={onClose} className="dialog">
      <form
        method="dialog"
        className="form"
        onSubmit={(e) => {
          e.preventDefault();
          void restore();
        }}
      >
        <h2 id="restore-title">Restore the backup of {new Date(backup.startedAt).toLocaleString()}</h2>
        <label>
          {usesPath
            ? 'Destination path (on the agent’s host, under its restore directories)'
            : 'Destination database'}
          <input value={database} onChange={(e) => setDatabase(e.target.value)} spellCheck={false} />
        </label>
        {servers.length > 1 && (
          <label>
            Through the server of
            <select value={through} onChange={(e) => setThrough(e.target.value)}>
              {servers.map((t) => (
                <option key={t.id} value={t.id}>
                  {t.name} ({t.host}){t.id === targetId ? ', where it was taken' : ''}
                </option>
              ))}
            </select>
          </label>
        )}
        <fieldset>
          <legend>If the destination exists</legend>
          {POLICIES.map(([p, words]) => (
            <label key={p} className="check">
              <input
                type="radio"
                name="conflict"
                value={p}
                checked={conflict === p}
                onChange={() => setConflict(p)}
              />
              <span>
                <strong>{p}</strong>: {words}
              </span>
            </label>
          ))}
        </fieldset>
        {backup.tables.length > 0 && (
          <fieldset className="tables">
            <legend>Tables (none ticked: all of them)</legend>
            {backup.tables.map((t) => (
              <label key={t} className="check">
                <input
                  type="checkbox"
                  checked={tables.includes(t)}
                  onChange={(e) =>
                    setTables(e.target.checked ? [...tables, t] : tables.filter((x) => x !== t))
                  }
                />
                {t}
              </label>
            ))}
          </fieldset>
        )}
        {error ? <ErrorNote error={error} /> : null}
        <div className="row-actions">
          <button type="submit">Restore</button>
          <button type="button" className="secondary" onClick={() => ref.current?.close()}>
            Cancel
          </button>
        </div>
        <Cli cmd={cli} />
      </form>
    </dialog>
  );
}
