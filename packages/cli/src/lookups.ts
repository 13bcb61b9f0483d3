import { type Api, CliError, EXIT, usage } from './api.js';
import { bytes, type Flags, type Out, show } from './output.js';

/** Finding what a command names (a target or agent by id or name), and following the jobs it starts. */

export type Target = { id: string; name: string; engine: string; agentId: string; storageId: string };
export type Agent = {
  id: string;
  hostname: string;
  status: string;
  agentVersion: string;
  lastSeenAt: string | null;
};
export type Job = {
  id: string;
  type: string;
  state: string;
  progress: {
    phase?: string;
    bytesDumped?: number;
    bytesStored?: number;
    rateBytesPerSecond?: number | null;
  };
  result: Record<string, unknown> | null;
  error: { code: string; message: string } | null;
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export async function resolveTarget(api: Api, ref: string | undefined): Promise<Target> {
  if (!ref) throw usage('which target? give its id or name');
  if (UUID.test(ref)) return api.get<Target>(`/api/v1/targets/${ref}`);
  const all = (await api.all<Target>('/api/v1/targets')).items.filter((t) => t.name === ref);
  if (all.length === 0) throw new CliError(`no target named ${JSON.stringify(ref)}`, EXIT.notFound);
  if (all.length > 1) throw usage(`${all.length} targets are named ${JSON.stringify(ref)}; use the id`);
  return all[0] as Target;
}

export async function resolveAgent(api: Api, ref: string | undefined): Promise<Agent> {
  if (!ref) throw usage('which agent? give its id or host name');
  if (UUID.test(ref)) return api.get<Agent>(`/api/v1/agents/${ref}`);
  const all = (await api.all<Agent>('/api/v1/agents')).items.filter(
    (a) => a.hostname === ref && a.status !== 'revoked',
  );
  if (all.length === 0) throw new CliError(`no agent on host ${JSON.stringify(ref)}`, EXIT.notFound);
  if (all.length > 1) throw usage(`${all.length} agents run on ${JSON.stringify(ref)}; use the id`);
  return all[0] as Agent;
}

/** Follow a job to its end, with a progress line on a terminal. Exit status follows the job. */
export async function waitJob(api: Api, out: Out, jobId: string): Promise<Job> {
  let last = '';
  for (;;) {
    const j = await api.get<Job>(`/api/v1/jobs/${jobId}`);
    if (['succeeded', 'failed', 'cancelled', 'stalled'].includes(j.state)) {
      if (out.tty && !out.json) out.err('\r\x1b[2K');
      return j;
    }
    const p = j.progress ?? {};
    const line = `${j.type} ${j.state} ${p.phase ?? ''} dumped ${bytes(p.bytesDumped ?? 0)} stored ${bytes(p.bytesStored ?? 0)}${
      p.rateBytesPerSecond ? ` at ${bytes(p.rateBytesPerSecond)}/s` : ''
    }`;
    if (out.tty && !out.json) out.err(`\r\x1b[2K${spinner()} ${line}`);
    else if (line !== last && !out.json) out.err(`${line}\n`);
    last = line;
    await new Promise((r) => setTimeout(r, 500));
  }
}
let spin = 0;
const spinner = () => '|/-\\'[spin++ % 4];

export function jobOutcome(out: Out, j: Job, human: string): number {
  show(out, j, () => {
    if (j.state === 'succeeded') out.write(`${human}\n`);
    else out.write(`${j.type} ${j.state}: ${j.error?.message ?? 'no detail'}\n`);
  });
  return j.state === 'succeeded' ? EXIT.ok : EXIT.failure;
}

/** A started job: follow it with --wait, else print its id. */
export async function started(
  api: Api,
  out: Out,
  flags: Flags,
  job: { id: string },
  done: (j: Job) => string,
) {
  if (!flags.wait) {
    show(out, job, () => out.write(`${job.id}\n`));
    return EXIT.ok;
  }
  const j = await waitJob(api, out, job.id);
  return jobOutcome(out, j, done(j));
}
