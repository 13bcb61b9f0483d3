import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { api, type User } from './api.js';
import { ErrorNote } from './ErrorNote.js';
import { relative } from './format.js';

type Agent = {
  id: string;
  hostname: string;
  agentVersion: string;
  status: string;
  enrolledAt: string;
  lastSeenAt: string | null;
  facts: { os?: string; tools?: { name: string; version: string | null }[] } | null;
};
type Found = {
  key: string;
  engine: string;
  version: string | null;
  connection: { host?: string; port?: number; database?: string; path?: string };
  targetId: string | null;
};
type Storage = { id: string; name: string };

/** Hosts (agents): status, last seen, version, what they found; add one, adopt its databases. */
export function Hosts({ user }: { user: User }) {
  const agents = useQuery({
    queryKey: ['agents'],
    queryFn: () => api<{ items: Agent[] }>('GET', '/agents?limit=500'),
    refetchInterval: 2000,
  });
  const canOperate = user.role !== 'viewer';
  const [adding, setAdding] = useState<
    { since: number; command: string | null; error?: unknown } | undefined
  >();
  const add = async () => {
    try {
      const t = await api<{ installCommand: string | null; token: string }>('POST', '/enrollment-tokens', {});
      setAdding({ since: Date.now(), command: t.installCommand });
    } catch (error) {
      setAdding({ since: Date.now(), command: null, error });
    }
  };
  const fresh = adding
    ? (agents.data?.items ?? []).filter((a) => Date.parse(a.enrolledAt) >= adding.since - 5000)
    : [];
  const online = fresh.find((a) => a.status === 'online');
  return (
    <section aria-labelledby="hosts-title">
      <h1 id="hosts-title">Hosts</h1>
      {agents.error && <ErrorNote error={agents.error} />}
      <p className="cli">
        CLI: <code>dbbackup agents</code>
      </p>
      {canOperate && !adding && (
        <button type="button" onClick={() => void add()}>
          Add a host
        </button>
      )}
      {adding && (
        <section className="add-host" aria-label="Add a host">
          {adding.error ? <ErrorNote error={adding.error} /> : null}
          {adding.command && (
            <>
              <p>Run this on the database host (the token works once, for 24 hours):</p>
              <pre data-testid="install-command">{adding.command}</pre>
              <button type="button" onClick={() => void navigator.clipboard?.writeText(adding.command ?? '')}>
                Copy
              </button>
              <p className="cli">
                CLI: <code>dbbackup enroll-token</code>
              </p>
            </>
          )}
          {!online && !adding.error && (
            <p aria-live="polite" data-testid="add-host-status">
              Waiting for the new host to connect…
            </p>
          )}
          {online && (
            <div data-testid="add-host-status" aria-live="polite">
              <p>
                <strong>{online.hostname}</strong> is online. Databases it found:
              </p>
              <Discovered agent={online} canOperate={canOperate} />
            </div>
          )}
        </section>
      )}
      <table className="hosts">
        <thead>
          <tr>
            <th scope="col">Host</th>
            <th scope="col">Status</th>
            <th scope="col">Last seen</th>
            <th scope="col">Version</th>
            <th scope="col">Tools found</th>
          </tr>
        </thead>
        <tbody>
          {agents.data?.items.map((a) => (
            <tr key={a.id} data-testid={`host-${a.hostname}`}>
              <td>{a.hostname}</td>
              <td>
                <span className={`badge badge-${a.status === 'online' ? 'healthy' : 'failing'}`}>
                  {a.status}
                </span>
              </td>
              <td>{relative(a.lastSeenAt)}</td>
              <td>{a.agentVersion}</td>
              <td>{[...new Set((a.facts?.tools ?? []).map((t) => t.name))].join(', ')}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function Discovered({ agent, canOperate }: { agent: Agent; canOperate: boolean }) {
  const found = useQuery({
    queryKey: ['discovered', agent.id],
    queryFn: () => api<{ items: Found[] }>('GET', `/agents/${agent.id}/discovered`),
  });
  const storage = useQuery({
    queryKey: ['storage'],
    queryFn: () => api<{ items: Storage[] }>('GET', '/storage'),
  });
  const [errors, setErrors] = useState<Record<string, unknown>>({});
  const adopt = async (f: Found) => {
    const storageId = storage.data?.items[0]?.id;
    const name = (f.connection.database ?? f.connection.path?.split('/').pop() ?? f.engine).replace(
      /[^A-Za-z0-9_.-]/g,
      '-',
    );
    try {
      if (!storageId) throw new Error('no storage profile yet: add one in Settings');
      await api('POST', `/agents/${agent.id}/discovered/${f.key}/adopt`, { name, storageId });
      await found.refetch();
    } catch (error) {
      setErrors((e) => ({ ...e, [f.key]: error }));
    }
  };
  if (found.data && found.data.items.length === 0)
    return <p>Nothing yet; discovery runs with each heartbeat.</p>;
  return (
    <ul className="discovered">
      {found.data?.items.map((f) => (
        <li key={f.key} data-testid={`found-${f.connection.database ?? f.connection.path ?? f.key}`}>
          {f.engine} {f.version ?? ''} <code>{f.connection.database ?? f.connection.path}</code>{' '}
          {f.targetId ? (
            <span className="badge badge-healthy">adopted</span>
          ) : (
            canOperate && (
              <button type="button" onClick={() => void adopt(f)}>
                Adopt
              </button>
            )
          )}
          {errors[f.key] !== undefined && <ErrorNote error={errors[f.key]} />}
        </li>
      ))}
    </ul>
  );
}
