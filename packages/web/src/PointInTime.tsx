import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { api } from './api.js';
import { Cli, shellWord } from './Cli.js';
import { ErrorNote } from './ErrorNote.js';
import { relative } from './format.js';
import type { Job } from './types.js';
import { useAction } from './useAction.js';

type Window = {
  earliest: string | null;
  latest: string | null;
  ranges: { timeline: number; from: string; to: string }[];
  gaps: {
    timeline: number;
    missingFrom: string;
    missingTo: string;
    restorableUntil: string | null;
    walResumesAt: string | null;
  }[];
  walFiles: number;
};
type Point = 'time' | 'latest' | 'lsn';

const when = (iso: string) => new Date(iso).toLocaleString();

/** A physical target's recovery window, and a restore to any point in it into a new data directory. */
export function PointInTime({
  targetId,
  name,
  canOperate,
  go,
}: {
  targetId: string;
  name: string;
  canOperate: boolean;
  go: (p: string) => void;
}) {
  const w = useQuery({
    queryKey: ['recovery-window', targetId],
    queryFn: () => api<Window>('GET', `/targets/${targetId}/recovery-window`),
    refetchInterval: 10_000,
  });
  const [point, setPoint] = useState<Point>('latest');
  const [time, setTime] = useState('');
  const [lsn, setLsn] = useState('');
  const [dataDirectory, setDataDirectory] = useState(`/var/lib/dbbackup/restore/${name}`);
  const [port, setPort] = useState(5433);
  const restore = useAction<unknown>();
  const iso = time ? new Date(time).toISOString() : '';
  const inWindow = !iso || (w.data?.ranges ?? []).some((r) => iso >= r.from && iso <= r.to);
  const body = {
    ...(point === 'time' ? { pointInTime: iso } : point === 'lsn' ? { lsn } : { latest: true }),
    dataDirectory,
    port,
  };
  const flag =
    point === 'time'
      ? `--to-time ${iso || 'TIME'}`
      : point === 'lsn'
        ? `--to-lsn ${lsn || 'LSN'}`
        : '--latest';
  return (
    <section aria-labelledby="pitr-title" className="card">
      <h2 id="pitr-title">Point-in-time recovery</h2>
      {w.error && <ErrorNote error={w.error} />}
      {w.data && (
        <div data-testid="recovery-window">
          {w.data.earliest && w.data.latest ? (
            <p>
              Restorable from {when(w.data.earliest)} to {when(w.data.latest)} ({relative(w.data.latest)}),{' '}
              {w.data.walFiles} WAL files archived.
            </p>
          ) : (
            <p className="muted">Nothing restorable yet: take a base backup first.</p>
          )}
          <ul className="plain">
            {w.data.ranges.map((r) => (
              <li key={`${r.timeline}-${r.from}`}>
                Timeline {r.timeline}: {when(r.from)} → {when(r.to)}
              </li>
            ))}
            {w.data.gaps.map((g) => (
              <li key={`gap-${g.timeline}-${g.restorableUntil}`} className="error">
                WAL {g.missingFrom}–{g.missingTo} is missing on timeline {g.timeline}: nothing after{' '}
                {g.restorableUntil ? when(g.restorableUntil) : 'its start'} can be reached
                {g.walResumesAt ? ` until ${when(g.walResumesAt)}` : ''}.
              </li>
            ))}
          </ul>
        </div>
      )}
      {canOperate && (
        <form
          className="form"
          aria-label="Restore to a point in time"
          onSubmit={(e) => {
            e.preventDefault();
            void restore.run(async () => {
              const job = await api<Job>('POST', `/targets/${targetId}/restore`, body);
              go(`/jobs/${job.id}`);
            });
          }}
        >
          <fieldset>
            <legend>Restore to</legend>
            {(
              [
                ['latest', 'The latest point archived'],
                ['time', 'A time'],
                ['lsn', 'A WAL position (LSN)'],
              ] as const
            ).map(([p, label]) => (
              <label key={p} className="check">
                <input type="radio" name="point" checked={point === p} onChange={() => setPoint(p)} />
                {label}
              </label>
            ))}
          </fieldset>
          {point === 'time' && (
            <label>
              Time (this browser’s time zone)
              <input type="datetime-local" step={1} value={time} onChange={(e) => setTime(e.target.value)} />
            </label>
          )}
          {point === 'time' && !inWindow && (
            <p className="warning">That time is outside the recovery window above.</p>
          )}
          {point === 'lsn' && (
            <label>
              LSN
              <input value={lsn} onChange={(e) => setLsn(e.target.value)} placeholder="0/3000060" />
            </label>
          )}
          <label>
            New data directory on the agent’s host (it must not exist or be empty)
            <input
              value={dataDirectory}
              onChange={(e) => setDataDirectory(e.target.value)}
              spellCheck={false}
            />
          </label>
          <label>
            Port the restored server listens on (127.0.0.1)
            <input
              type="number"
              min={1024}
              max={65535}
              value={port}
              onChange={(e) => setPort(Number(e.target.value))}
            />
          </label>
          {restore.error ? <ErrorNote error={restore.error} /> : null}
          <button type="submit" disabled={restore.busy}>
            Restore to this point
          </button>
          <Cli
            cmd={`dbbackup restore ${shellWord(name)} --data-dir ${shellWord(dataDirectory)} ${flag} --port ${port} --wait`}
          />
        </form>
      )}
    </section>
  );
}
