import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { api } from './api.js';
import { apiCli, Cli } from './Cli.js';
import { ErrorNote } from './ErrorNote.js';
import { useAction } from './useAction.js';

type Storage = {
  id: string;
  name: string;
  kind: string;
  directory?: string;
  bucket?: string;
  prefix?: string;
};
type Agent = { id: string; hostname: string; status: string };
type Command = {
  state: string;
  result: { bytes: number; writeMs: number; readMs: number; deleteMs: number } | null;
  error: { code?: string; message?: string } | null;
};

const FINAL = ['succeeded', 'failed', 'expired', 'cancelled'];

async function waitCommand(id: string): Promise<Command> {
  for (let i = 0; i < 600; i++) {
    const c = await api<Command>('GET', `/commands/${id}`);
    if (FINAL.includes(c.state)) return c;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error('the agent did not answer within five minutes');
}

/** Storage profiles, each tested from a host of choice (where backups are written from). */
export function SettingsStorage({ canOperate }: { canOperate: boolean }) {
  const q = useQuery({ queryKey: ['storage'], queryFn: () => api<{ items: Storage[] }>('GET', '/storage') });
  const agents = useQuery({
    queryKey: ['agents'],
    queryFn: () => api<{ items: Agent[] }>('GET', '/agents?limit=500'),
  });
  const online = (agents.data?.items ?? []).filter((a) => a.status === 'online');
  return (
    <section aria-labelledby="storage-title" className="card">
      <h2 id="storage-title">Storage</h2>
      {q.error && <ErrorNote error={q.error} />}
      {q.data?.items.length === 0 && <p className="muted">No storage profile yet.</p>}
      <ul className="plain">
        {q.data?.items.map((s) => (
          <StorageRow key={s.id} storage={s} online={online} canOperate={canOperate} />
        ))}
      </ul>
      <Cli cmd={apiCli('GET', '/storage')} />
    </section>
  );
}

function where(s: Storage): string {
  if (s.kind === 'local') return s.directory ?? '';
  return `s3://${s.bucket ?? ''}/${s.prefix ?? ''}`;
}

function StorageRow({
  storage: s,
  online,
  canOperate,
}: {
  storage: Storage;
  online: Agent[];
  canOperate: boolean;
}) {
  const [agentId, setAgentId] = useState('');
  const chosen = agentId || online[0]?.id || '';
  const test = useAction<Command>();
  const r = test.result;
  return (
    <li data-testid={`storage-${s.name}`}>
      <strong>{s.name}</strong> <span className="muted">{s.kind}</span> <code>{where(s)}</code>
      {canOperate && (
        <span className="row-actions">
          <label>
            From host{' '}
            <select value={chosen} onChange={(e) => setAgentId(e.target.value)}>
              {online.map((a) => (
                <option key={a.id} value={a.id}>
                  {a.hostname}
                </option>
              ))}
            </select>
          </label>
          <button
            type="button"
            disabled={!chosen || test.busy}
            onClick={() =>
              void test.run(async () => {
                const c = await api<{ commandId: string }>('POST', `/storage/${s.id}/test`, {
                  agentId: chosen,
                });
                return waitCommand(c.commandId);
              })
            }
          >
            {test.busy ? 'Testing…' : 'Test'}
          </button>
          <Cli cmd={apiCli('POST', `/storage/${s.id}/test`, { agentId: chosen || 'AGENT_ID' })} />
        </span>
      )}
      {test.error ? <ErrorNote error={test.error} /> : null}
      {r && (
        <p
          role="status"
          data-testid={`storage-test-${s.name}`}
          className={r.state === 'succeeded' ? '' : 'error'}
        >
          {r.state === 'succeeded' && r.result
            ? `Works: wrote ${Math.round(r.result.bytes / 1024)} KiB in ${r.result.writeMs} ms, read it back in ${r.result.readMs} ms, deleted it in ${r.result.deleteMs} ms.`
            : `Failed: ${r.error?.message ?? r.state}`}
        </p>
      )}
    </li>
  );
}
