import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { api, type Role } from './api.js';
import { apiCli, Cli } from './Cli.js';
import { ErrorNote } from './ErrorNote.js';
import { relative } from './format.js';
import { useAction } from './useAction.js';

type UserRow = {
  id: string;
  username: string;
  role: Role;
  disabledAt: string | null;
  lastLoginAt: string | null;
};
type TokenRow = {
  id: string;
  name: string;
  role: Role;
  lastUsedAt: string | null;
  revokedAt: string | null;
  expiresAt: string | null;
};
const ROLES: Role[] = ['viewer', 'operator', 'admin'];

/** Users (who logs in to this page and the CLI) and API tokens (scripts): admin only. */
export function SettingsAccess() {
  return (
    <section aria-labelledby="access-title" className="card">
      <h2 id="access-title">Users and API tokens</h2>
      <Users />
      <Tokens />
    </section>
  );
}

function Users() {
  const qc = useQueryClient();
  const q = useQuery({ queryKey: ['users'], queryFn: () => api<{ items: UserRow[] }>('GET', '/users') });
  const [draft, setDraft] = useState({ username: '', password: '', role: 'viewer' as Role });
  const act = useAction<unknown>();
  const change = (fn: () => Promise<unknown>) =>
    act.run(async () => {
      await fn();
      await qc.invalidateQueries({ queryKey: ['users'] });
      return undefined;
    });
  return (
    <>
      <h3>Users</h3>
      {q.error && <ErrorNote error={q.error} />}
      <table>
        <thead>
          <tr>
            <th scope="col">User</th>
            <th scope="col">Role</th>
            <th scope="col">Last login</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {q.data?.items.map((u) => (
            <tr key={u.id} data-testid={`user-${u.username}`}>
              <td>
                {u.username}
                {u.disabledAt ? <span className="muted"> (disabled)</span> : null}
              </td>
              <td>
                <select
                  aria-label={`Role of ${u.username}`}
                  value={u.role}
                  onChange={(e) =>
                    void change(() => api('PATCH', `/users/${u.id}`, { role: e.target.value }))
                  }
                >
                  {ROLES.map((r) => (
                    <option key={r}>{r}</option>
                  ))}
                </select>
              </td>
              <td>{relative(u.lastLoginAt)}</td>
              <td>
                <button
                  type="button"
                  className="danger"
                  onClick={() => void change(() => api('DELETE', `/users/${u.id}`))}
                >
                  Delete<span className="visually-hidden"> {u.username}</span>
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {act.error ? <ErrorNote error={act.error} /> : null}
      <form
        className="form rules"
        aria-label="New user"
        onSubmit={(e) => {
          e.preventDefault();
          void change(() => api('POST', '/users', draft)).then(() =>
            setDraft({ ...draft, username: '', password: '' }),
          );
        }}
      >
        <label>
          Username
          <input value={draft.username} onChange={(e) => setDraft({ ...draft, username: e.target.value })} />
        </label>
        <label>
          Password (12 characters or more)
          <input
            type="password"
            autoComplete="new-password"
            value={draft.password}
            onChange={(e) => setDraft({ ...draft, password: e.target.value })}
          />
        </label>
        <label>
          Role
          <select value={draft.role} onChange={(e) => setDraft({ ...draft, role: e.target.value as Role })}>
            {ROLES.map((r) => (
              <option key={r}>{r}</option>
            ))}
          </select>
        </label>
        <button type="submit">Add the user</button>
      </form>
      <Cli
        cmd={apiCli('POST', '/users', {
          username: draft.username || 'NAME',
          password: '…',
          role: draft.role,
        })}
      />
    </>
  );
}

function Tokens() {
  const qc = useQueryClient();
  const q = useQuery({ queryKey: ['tokens'], queryFn: () => api<{ items: TokenRow[] }>('GET', '/tokens') });
  const [draft, setDraft] = useState({ name: '', role: 'viewer' as Role, expiresInDays: 90 });
  const created = useAction<{ token: string; name: string }>();
  const act = useAction<unknown>();
  const live = (q.data?.items ?? []).filter((t) => !t.revokedAt);
  return (
    <>
      <h3>API tokens</h3>
      {q.error && <ErrorNote error={q.error} />}
      <ul className="plain">
        {live.map((t) => (
          <li key={t.id} data-testid={`token-${t.name}`}>
            <strong>{t.name}</strong> <span className="muted">{t.role}</span> used {relative(t.lastUsedAt)}
            {t.expiresAt ? `, expires ${relative(t.expiresAt)}` : ', no expiry'}
            <button
              type="button"
              className="danger"
              onClick={() =>
                void act.run(async () => {
                  await api('DELETE', `/tokens/${t.id}`);
                  // A revoked token's one showing is of no use any more.
                  if (created.result?.name === t.name) created.setResult(undefined);
                  await qc.invalidateQueries({ queryKey: ['tokens'] });
                })
              }
            >
              Revoke<span className="visually-hidden"> {t.name}</span>
            </button>
          </li>
        ))}
      </ul>
      {act.error ? <ErrorNote error={act.error} /> : null}
      <form
        className="form rules"
        aria-label="New API token"
        onSubmit={(e) => {
          e.preventDefault();
          void created.run(async () => {
            const t = await api<{ token: string; name: string }>('POST', '/tokens', draft);
            await qc.invalidateQueries({ queryKey: ['tokens'] });
            return t;
          });
        }}
      >
        <label>
          Name
          <input value={draft.name} onChange={(e) => setDraft({ ...draft, name: e.target.value })} />
        </label>
        <label>
          Role
          <select value={draft.role} onChange={(e) => setDraft({ ...draft, role: e.target.value as Role })}>
            {ROLES.map((r) => (
              <option key={r}>{r}</option>
            ))}
          </select>
        </label>
        <label>
          Days valid
          <input
            type="number"
            min={1}
            value={draft.expiresInDays}
            onChange={(e) => setDraft({ ...draft, expiresInDays: Number(e.target.value) })}
          />
        </label>
        <button type="submit">Create the token</button>
      </form>
      {created.error ? <ErrorNote error={created.error} /> : null}
      {created.result && (
        <div className="warning" role="status">
          <p>The token {created.result.name}, shown this once; keep it where your scripts read secrets:</p>
          <code data-testid="new-token">{created.result.token}</code>
        </div>
      )}
      <Cli cmd={apiCli('POST', '/tokens', { ...draft, name: draft.name || 'NAME' })} />
    </>
  );
}
