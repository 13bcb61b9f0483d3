import { streamSSE } from 'hono/streaming';
import type { Db } from '../db/database.js';
import { notFound } from '../problem.js';
import type { Ctx, RouteDeps } from './route-deps.js';
import { jobView } from './views.js';

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);
const POLL_MS = 500;
/** A stream is closed after this long; the client reconnects with Last-Event-ID and loses nothing. */
const MAX_STREAM_MS = 10 * 60_000;

/** A job's log lines after line `after`, oldest first, at most `limit` (the logs route and the stream). */
export function logLinesAfter(db: Db, jobId: string, after: number, limit: number) {
  return db
    .selectFrom('job_logs')
    .select(['id', 'at', 'level', 'message'])
    .where('job_id', '=', jobId)
    .where('id', '>', after)
    .orderBy('id')
    .limit(limit)
    .execute();
}

/**
 * GET /jobs/:id/events: the job as Server-Sent Events. `job` events carry its state and
 * progress when they change; `log` events carry each log line with its id as the event id,
 * so a client reconnecting with Last-Event-ID (or ?after=) resumes after the last line it
 * had; `end` follows the last line of a finished job. Read from the database, so it works
 * on any replica, whichever one the job's agent is connected to.
 */
export async function jobEvents(c: Ctx, { db }: RouteDeps, id: string) {
  const first = await db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
  if (!first) throw notFound('job');
  const resume = Number(c.req.header('last-event-id') ?? c.req.query('after') ?? 0);
  let after = Number.isSafeInteger(resume) && resume > 0 ? resume : 0;
  c.header('cache-control', 'no-store');
  c.header('x-accel-buffering', 'no');
  return streamSSE(c, async (stream) => {
    const started = Date.now();
    let seen = '';
    while (!stream.aborted && Date.now() - started < MAX_STREAM_MS) {
      const job = await db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
      if (!job) break;
      const view = JSON.stringify(jobView(job));
      if (view !== seen) {
        seen = view;
        await stream.writeSSE({ event: 'job', data: view });
      }
      const lines = await logLinesAfter(db, id, after, 500);
      for (const l of lines) {
        await stream.writeSSE({ event: 'log', id: String(l.id), data: JSON.stringify(l) });
        after = l.id;
      }
      if (TERMINAL.has(job.state) && lines.length < 500) {
        await stream.writeSSE({ event: 'end', data: JSON.stringify({ state: job.state }) });
        break;
      }
      await stream.sleep(POLL_MS);
    }
  });
}
