import { type KeyObject, sign } from 'node:crypto';
import { statfs } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '@dbbackup/logger';
import { redactText } from '@dbbackup/logger';
import { loadEncryptionKey } from '../identity.js';
import type { JobContext } from '../jobs/job-context.js';
import type { AgentStore } from '../store/agent-store.js';

export interface JobContextDeps {
  agentId: string;
  stateDir: string;
  signingKey: KeyObject;
  store: AgentStore;
  log: Logger;
  /** Send what the outbox holds now. */
  flush: () => void;
  crashPoint: string | undefined;
  /** Fault injection for the tests: `job-events-full` fails every job log/progress write. */
  fault: string | undefined;
  /** Fault injection for the tests: the free bytes a drill sees. */
  freeBytes: number | undefined;
}

/**
 * The job contexts of one agent. A job's log and progress are recorded in the background;
 * a failure to record them (the state directory's disk is full) is kept for the job, which
 * fails before it commits.
 */
export class JobContexts {
  readonly #faults = new Map<string, Error>();
  constructor(readonly d: JobContextDeps) {}

  /** The job is over: forget its recording fault. */
  forget(jobId: string | undefined) {
    if (jobId) this.#faults.delete(jobId);
  }

  for(jobId: string): JobContext {
    const { d } = this;
    const log = d.log.child({ jobId });
    const faulty = d.fault === 'job-events-full';
    const record = (body: Parameters<AgentStore['appendEvent']>[0]) => {
      (faulty ? Promise.reject(sqliteFull()) : d.store.appendEvent(body)).then(d.flush, (err: Error) => {
        if (!this.#faults.has(jobId)) log.error({ err: err.message }, 'could not record job events');
        this.#faults.set(jobId, err);
      });
    };
    return {
      agentId: d.agentId,
      encryptionKey: () => loadEncryptionKey(d.stateDir),
      sign: (data) => sign(null, data, d.signingKey).toString('base64url'),
      log: (level, message) => {
        log[level]({ job: true }, message);
        record({ type: 'job.log', jobId, level, message: redactText(message).slice(0, 8000) });
      },
      progress: (phase, bytesIn, bytesOut) => {
        record({ type: 'job.progress', jobId, phase, bytesIn, bytesOut });
      },
      storageFault: () => this.#faults.get(jobId),
      crashPoint: d.crashPoint,
      recordUpload: (storage, key, uploadId) => d.store.recordUpload(jobId, storage, key, uploadId),
      clearUpload: () => d.store.clearUpload(jobId),
      drillsDir: path.join(d.stateDir, 'drills'),
      freeBytes: async (dir) => {
        if (d.freeBytes !== undefined) return d.freeBytes;
        const s = await statfs(dir);
        return Number(s.bavail) * Number(s.bsize);
      },
      recordScratch: (scratch) => d.store.setMeta(`scratch:${jobId}`, JSON.stringify(scratch)),
      clearScratch: () => d.store.deleteMeta(`scratch:${jobId}`),
    };
  }
}

/** The error better-sqlite3 throws when the disk (or the database's page limit) is full. */
function sqliteFull(): Error {
  return Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
}
