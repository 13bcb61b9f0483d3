import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { api, type User } from './api.js';
import { Cli } from './Cli.js';
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
      <HostsTable
        agents={agents.data?.items ?? []}
        canOperate={canOperate}
        onChange={() => void agents.refetch()}
      />
    </section>
  );
}

/** Whether `v` is older than the release `r` (X.Y.Z). */
export function olderThan(v: string, r: string | null | undefined): boolean {
  if (!r) return false;
  const a = v.split('.').map(Number);
  const b = r.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    if (Number.isNaN(a[i]) || Number.isNaN(b[i])) return false;
    if (a[i]! !== b[i]!) return a[i]! < b[i]!;
  }
  return false;
}

function HostsTable({
  agents,
  canOperate,
  onChange,
}: {
  agents: Agent[];
  canOperate: boolean;
  onChange: () => void;
}) {
  const overview = useQuery({
    queryKey: ['dashboard/overview'],
    queryFn: () => api<{ agentRelease: string | null }>('GET', '/dashboard/overview'),
  });
  const release = overview.data?.agentRelease;
  return (
    <table className="hosts">
      <thead>
        <tr>
          <th scope="col">Host</th>
          <th scope="col">Status</th>
          <th scope="col">Last seen</th>
          <th scope="col">Version</th>
          <th scope="col">Tools found</th>
          <th scope="col">Details</th>
        </tr>
      </thead>
      <tbody>
        {agents.map((a) => (
          <tr key={a.id} data-testid={`host-${a.hostname}`}>
            <td>{a.hostname}</td>
            <td>
              <span className={`badge badge-${a.status === 'online' ? 'healthy' : 'failing'}`}>
                {a.status}
              </span>
            </td>
            <td>{relative(a.lastSeenAt)}</td>
            <td>
              {a.agentVersion}
              {a.status !== 'revoked' && olderThan(a.agentVersion, release) && (
                <div className="warning" data-testid="upgrade-hint">
                  {release} is available: run the install one-liner again on this host (it upgrades in place).
                </div>
              )}
            </td>
            <td>{[...new Set((a.facts?.tools ?? []).map((t) => t.name))].join(', ')}</td>
            <td>
              <HostDetails agent={a} canOperate={canOperate} onChange={onChange} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function HostDetails({
  agent: a,
  canOperate,
  onChange,
}: {
  agent: Agent;
  canOperate: boolean;
  onChange: () => void;
}) {
  const [open, setOpen] = useState(false);
  const [confirm, setConfirm] = useState(false);
  const [error, setError] = useState<unknown>();
  const revoke = async () => {
    setError(undefined);
    try {
      await api('DELETE', `/agents/${a.id}`);
      setConfirm(false);
      onChange();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <details onToggle={(e) => setOpen((e.target as HTMLDetailsElement).open)}>
      <summary>
        Facts and databases<span className="visually-hidden"> of {a.hostname}</span>
      </summary>
      <dl className="facts">
        <dt>Operating system</dt>
        <dd>{a.facts?.os ?? 'not reported'}</dd>
        <dt>Enrolled</dt>
        <dd>{relative(a.enrolledAt)}</dd>
        <dt>Tools</dt>
        <dd>
          {(a.facts?.tools ?? []).map((t) => `${t.name} ${t.version ?? ''}`.trim()).join(', ') ||
            'none found'}
        </dd>
      </dl>
      {open && a.status !== 'revoked' && <Discovered agent={a} canOperate={canOperate} />}
      {canOperate && a.status !== 'revoked' && (
        <div className="row-actions">
          {confirm ? (
            <>
              <button type="button" className="danger" onClick={() => void revoke()}>
                Revoke {a.hostname} for good
              </button>
              <button type="button" className="secondary" onClick={() => setConfirm(false)}>
                Keep it
              </button>
            </>
          ) : (
            <button type="button" className="danger" onClick={() => setConfirm(true)}>
              Revoke
            </button>
          )}
          <Cli cmd={`dbbackup agents revoke ${a.hostname}`} />
        </div>
      )}
      {error ? <ErrorNote error={error} /> : null}
    </details>
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
