import { useQuery } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { api, follow } from './api.js';
import { bytes } from './format.js';
import type { Job, TargetDetail } from './types.js';

type Line = { id: number; at: string; level: string; message: string };

/**
 * How many bytes the job will read, when it can be known: a restore or verify reads its
 * backup's dump; a backup is expected near the size of the target's previous good one.
 */
function useExpectedBytes(job: Job | undefined): { bytes: number; from: string } | undefined {
  const q = useQuery({
    queryKey: ['expected', job?.id],
    enabled: job !== undefined && (job.backupId !== null || job.targetId !== null),
    staleTime: Number.POSITIVE_INFINITY,
    queryFn: async () => {
      if (!job) return null;
      if (job.type !== 'backup' && job.backupId) {
        const b = await api<{ meta: { dumpBytes?: number } }>('GET', `/backups/${job.backupId}`);
        return b.meta.dumpBytes ? { bytes: b.meta.dumpBytes, from: 'the backup’s size' } : null;
      }
      if (job.type === 'backup' && job.targetId) {
        const d = await api<TargetDetail>('GET', `/dashboard/targets/${job.targetId}`);
        const prev = d.backups.find((b) => b.status === 'completed' && b.dumpBytes && b.id !== job.backupId);
        return prev?.dumpBytes ? { bytes: prev.dumpBytes, from: 'the previous backup' } : null;
      }
      return null;
    },
  });
  return q.data ?? undefined;
}

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
  const expected = useExpectedBytes(job);
  const read = p?.bytesDumped ?? 0;
  const running = job?.state === 'running';
  const left = expected && rate && running ? Math.max(0, (expected.bytes - read) / rate) : undefined;
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
        {expected && (
          <>
            <dt>Expected size</dt>
            <dd>
              about {bytes(expected.bytes)} ({expected.from})
              {running && (
                <progress
                  max={expected.bytes}
                  value={Math.min(read, expected.bytes)}
                  aria-label="Read so far against the expected size"
                />
              )}
            </dd>
            {left !== undefined && (
              <>
                <dt>Estimate</dt>
                <dd data-testid="job-estimate">about {Math.ceil(left)} s left</dd>
              </>
            )}
          </>
        )}
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
