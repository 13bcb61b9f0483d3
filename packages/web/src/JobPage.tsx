import { useEffect, useState } from 'react';
import { follow } from './api.js';
import { bytes } from './format.js';
import type { Job } from './types.js';

type Line = { id: number; at: string; level: string; message: string };

/** One job, live: its state and progress, and its log as it is written (Server-Sent Events). */
export function JobPage({ id }: { id: string }) {
  const [job, setJob] = useState<Job | undefined>();
  const [lines, setLines] = useState<Line[]>([]);
  const [ended, setEnded] = useState(false);
  const [startedAt] = useState(Date.now());
  const [, tick] = useState(0);
  useEffect(() => {
    setLines([]);
    setEnded(false);
    return follow(
      `/jobs/${id}/events`,
      (event, data) => {
        if (event === 'job') setJob(JSON.parse(data) as Job);
        if (event === 'log') setLines((l) => [...l, JSON.parse(data) as Line]);
        if (event === 'end') setEnded(true);
      },
      () => setEnded(true),
    );
  }, [id]);
  useEffect(() => {
    const t = setInterval(() => tick((n) => n + 1), 1000);
    return () => clearInterval(t);
  }, []);
  const p = job?.progress;
  const since = job?.startedAt ? Date.parse(job.startedAt) : startedAt;
  const elapsed = Math.max(0, ((job?.finishedAt ? Date.parse(job.finishedAt) : Date.now()) - since) / 1000);
  const rate = p?.rateBytesPerSecond ?? undefined;
  return (
    <section aria-labelledby="job-title">
      <h1 id="job-title">
        {job ? `${job.type} job` : 'Job'} <code>{id.slice(0, 8)}</code>
      </h1>
      <p className="cli">
        CLI: <code>dbbackup logs {id} --follow</code>
      </p>
      <dl className="facts">
        <dt>State</dt>
        <dd data-testid="job-state" className={`state-${job?.state ?? 'unknown'}`}>
          {job?.state ?? '…'}
          {ended ? '' : ' (live)'}
        </dd>
        <dt>Phase</dt>
        <dd>{p?.phase ?? '–'}</dd>
        <dt>Read</dt>
        <dd data-testid="job-read">{bytes(p?.bytesDumped) || '–'}</dd>
        <dt>Stored</dt>
        <dd>{bytes(p?.bytesStored) || '–'}</dd>
        <dt>Rate</dt>
        <dd>{rate ? `${bytes(rate)}/s` : '–'}</dd>
        <dt>Elapsed</dt>
        <dd>{elapsed.toFixed(0)} s</dd>
        {job?.error && (
          <>
            <dt>Error</dt>
            <dd className="error">{job.error.message ?? job.error.code}</dd>
          </>
        )}
      </dl>
      <h2>Log</h2>
      <ol className="log" data-testid="job-log" aria-live="polite">
        {lines.map((l) => (
          <li key={l.id} className={`level-${l.level}`}>
            <time>{new Date(l.at).toISOString().slice(11, 19)}</time> {l.message}
          </li>
        ))}
      </ol>
    </section>
  );
}
