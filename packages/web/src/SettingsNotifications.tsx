import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { api } from './api.js';
import { type Channel, ChannelForm, type EventCatalogue } from './ChannelForm.js';
import { apiCli, Cli } from './Cli.js';
import { ErrorNote } from './ErrorNote.js';
import { useAction } from './useAction.js';

type Outcome = { state: 'delivered' | 'failed'; error: string | null };

/** Notification channels, each with a test message sent now (operators); admins add, change and delete them. */
export function SettingsNotifications({ admin }: { admin: boolean }) {
  const q = useQuery({
    queryKey: ['channels'],
    queryFn: () => api<{ items: Channel[] } & EventCatalogue>('GET', '/notifications/channels'),
  });
  return (
    <section aria-labelledby="channels-title" className="card">
      <h2 id="channels-title">Notification channels</h2>
      {q.error && <ErrorNote error={q.error} />}
      {q.data?.items.length === 0 && (
        <p className="muted">No channel: alerts are only shown here and in the API.</p>
      )}
      <ul className="plain">
        {q.data?.items.map((c) => (
          <ChannelRow
            key={c.id}
            channel={c}
            catalogue={q.data}
            admin={admin}
            onChange={() => void q.refetch()}
          />
        ))}
      </ul>
      <Cli cmd={apiCli('GET', '/notifications/channels')} />
      {admin && q.data && <ChannelForm catalogue={q.data} onDone={() => void q.refetch()} />}
    </section>
  );
}

function ChannelRow({
  channel: c,
  catalogue,
  admin,
  onChange,
}: {
  channel: Channel;
  catalogue: EventCatalogue;
  admin: boolean;
  onChange: () => void;
}) {
  const [editing, setEditing] = useState(false);
  const test = useAction<Outcome>();
  const change = useAction<unknown>();
  const act = (method: string, body?: unknown) =>
    void change.run(async () => {
      await api(method, `/notifications/channels/${c.id}`, body);
      onChange();
    });
  return (
    <li data-testid={`channel-${c.name}`}>
      <strong>{c.name}</strong> <span className="muted">{c.kind}</span>
      {c.enabled ? '' : ' (disabled)'} — {c.events?.join(', ') || 'every event'}
      <button
        type="button"
        className="secondary"
        disabled={test.busy}
        onClick={() => void test.run(() => api<Outcome>('POST', '/notifications/test', { channelId: c.id }))}
      >
        Send a test<span className="visually-hidden"> to {c.name}</span>
      </button>
      {admin && (
        <>
          <button type="button" className="secondary" onClick={() => act('PATCH', { enabled: !c.enabled })}>
            {c.enabled ? 'Disable' : 'Enable'}
            <span className="visually-hidden"> {c.name}</span>
          </button>
          <button type="button" className="secondary" onClick={() => setEditing(!editing)}>
            {editing ? 'Close' : 'Change'}
            <span className="visually-hidden"> {c.name}</span>
          </button>
          <button type="button" className="danger" onClick={() => act('DELETE')}>
            Delete<span className="visually-hidden"> {c.name}</span>
          </button>
        </>
      )}
      {editing && (
        <ChannelForm
          channel={c}
          catalogue={catalogue}
          onDone={() => {
            setEditing(false);
            onChange();
          }}
        />
      )}
      <Cli cmd={apiCli('POST', '/notifications/test', { channelId: c.id })} />
      {change.error ? <ErrorNote error={change.error} /> : null}
      {test.error ? <ErrorNote error={test.error} /> : null}
      {test.result && (
        <span role="status" className={test.result.state === 'delivered' ? '' : 'error'}>
          {test.result.state === 'delivered'
            ? 'Delivered.'
            : `Not delivered: ${test.result.error ?? 'no reason given'}`}
        </span>
      )}
    </li>
  );
}
