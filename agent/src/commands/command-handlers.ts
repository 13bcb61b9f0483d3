import { type AgentConfig, Command, type DumpTool, type ProbeResult } from '@dbbackup/proto';
import { AgentError } from '../agent-error.js';
import { probeLocalServers } from '../host-facts.js';
import type { JobContext } from '../jobs/job-context.js';

export interface HandlerContext {
  tools: () => Promise<DumpTool[]>;
  job: (jobId: string) => JobContext;
  applyConfig: (config: AgentConfig) => Promise<{ applied: number; schedules: number }>;
  applyRetention: (c: Extract<Command, { kind: 'retention.apply' | 'backup.delete' }>) => Promise<unknown>;
}

/** Run one command; the result goes into the `command.succeeded` event. */
export async function runCommand(kind: string, payload: unknown, ctx: HandlerContext): Promise<unknown> {
  const parsed = Command.safeParse({ ...(payload as object), kind });
  if (!parsed.success) throw new AgentError('unsupported', `this agent cannot run a '${kind}' command`);
  const c = parsed.data;
  switch (c.kind) {
    case 'ping':
      return { agentTime: new Date().toISOString(), ...(c.echo !== undefined ? { echo: c.echo } : {}) };
    case 'retention.apply':
    case 'backup.delete':
      return ctx.applyRetention(c);
    case 'meta.rewrite':
      return (await import('../jobs/meta-rewrite.js')).rewriteMeta(c);
    case 'config.sync':
      if (!c.config) throw new AgentError('bad-command', 'config.sync without a configuration');
      return ctx.applyConfig(c.config);
    case 'probe': {
      const [tools, servers] = await Promise.all([ctx.tools(), probeLocalServers()]);
      return { tools, servers } satisfies ProbeResult;
    }
    // Engines and the pipeline are loaded on first use: an idle agent stays small.
    case 'storage.test':
      return (await import('../storage/storage-test.js')).testStorage(c.storage);
    case 'target.test':
      return (await (await import('../engines/registry.js')).engineFor(c.target)).testConnection(c.target);
    case 'backup':
      return (await import('../jobs/backup-job.js')).runBackup(c, ctx.job(c.jobId));
    case 'verify':
      return (await import('../jobs/restore-job.js')).runVerify(c, ctx.job(c.jobId));
    case 'restore':
      return (await import('../jobs/restore-job.js')).runRestore(c, ctx.job(c.jobId));
    case 'drill':
      return (await import('../jobs/drill-job.js')).runDrill(c, ctx.job(c.jobId));
    case 'wal.verify':
      return (await import('../jobs/wal-verify-job.js')).runWalVerify(c, ctx.job(c.jobId));
    case 'pitr.restore':
      return (await import('../jobs/pitr-restore-job.js')).runPitrRestore(c, ctx.job(c.jobId));
    case 'pitr.drill':
      return (await import('../jobs/pitr-drill-job.js')).runPitrDrill(c, ctx.job(c.jobId));
    default:
      throw new AgentError('unsupported', `this agent cannot run a '${kind}' command`);
  }
}
