import { useState } from 'react';
import { api } from './api.js';
import { apiCli, Cli } from './Cli.js';
import { ErrorNote } from './ErrorNote.js';
import { useAction } from './useAction.js';

type Kind = 'webhook' | 'slack' | 'email';
type Draft = {
  name: string;
  kind: Kind;
  url: string;
  secret: string;
  host: string;
  port: number;
  user: string;
  password: string;
  from: string;
  to: string;
};
const EMPTY: Draft = {
  name: '',
  kind: 'webhook',
  url: '',
  secret: '',
  host: '',
  port: 587,
  user: '',
  password: '',
  from: '',
  to: '',
};

function config(d: Draft) {
  if (d.kind === 'webhook') return { kind: d.kind, url: d.url, secret: d.secret };
  if (d.kind === 'slack') return { kind: d.kind, url: d.url };
  return {
    kind: d.kind,
    host: d.host,
    port: d.port,
    ...(d.user ? { user: d.user, password: d.password } : {}),
    from: d.from,
    to: d.to
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  };
}

/** A new notification channel (admin). Its secrets go to the API once and are never shown again. */
export function ChannelForm({ onCreated }: { onCreated: () => void }) {
  const [d, setD] = useState<Draft>(EMPTY);
  const save = useAction<unknown>();
  const field = (k: keyof Draft, label: string, type = 'text') => (
    <label>
      {label}
      <input
        type={type}
        value={String(d[k])}
        autoComplete={type === 'password' ? 'new-password' : 'off'}
        onChange={(e) => setD({ ...d, [k]: type === 'number' ? Number(e.target.value) : e.target.value })}
      />
    </label>
  );
  // The CLI line never repeats a secret typed here.
  const shown = {
    ...config(d),
    ...(d.secret ? { secret: '…' } : {}),
    ...(d.password ? { password: '…' } : {}),
  };
  return (
    <form
      className="form rules"
      aria-label="New channel"
      onSubmit={(e) => {
        e.preventDefault();
        void save.run(async () => {
          await api('POST', '/notifications/channels', { name: d.name, config: config(d) });
          setD(EMPTY);
          onCreated();
        });
      }}
    >
      {field('name', 'Name')}
      <label>
        Kind
        <select value={d.kind} onChange={(e) => setD({ ...d, kind: e.target.value as Kind })}>
          <option value="webhook">webhook (signed JSON)</option>
          <option value="slack">Slack incoming webhook</option>
          <option value="email">email (SMTP)</option>
        </select>
      </label>
      {d.kind !== 'email' && field('url', 'URL', 'url')}
      {d.kind === 'webhook' && field('secret', 'Signing secret (16 characters or more)', 'password')}
      {d.kind === 'email' && (
        <>
          {field('host', 'SMTP host')}
          {field('port', 'Port', 'number')}
          {field('user', 'User (optional)')}
          {field('password', 'Password', 'password')}
          {field('from', 'From')}
          {field('to', 'To (comma-separated)')}
        </>
      )}
      <button type="submit" disabled={save.busy}>
        Add the channel
      </button>
      {save.error ? <ErrorNote error={save.error} /> : null}
      <Cli cmd={apiCli('POST', '/notifications/channels', { name: d.name || 'NAME', config: shown })} />
    </form>
  );
}
